"""Simulated listening as a source: off unless asked for (demo, `make dev`, tests, bench)."""

import datetime as dt

import pandas as pd
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from spotify_platform.core.sources.simulator import ListeningSimulator

DEFAULT_EPOCH = "2025-06-01"


class SimulatorResource(ConfigurableResource):
    """Feeds the raw layer with simulated plays when `accounts` > 0.

    Real lakes must never receive invented plays, so the default is off; the demo and
    `make dev` switch it on with SIMULATOR_ACCOUNTS.
    """

    accounts: int = 0
    seed: int = 7
    epoch: str = DEFAULT_EPOCH
    plays_per_active_day: float = 30.0

    _simulator: ListeningSimulator | None = PrivateAttr(default=None)

    @property
    def enabled(self) -> bool:
        return self.accounts > 0

    def simulator(self) -> ListeningSimulator:
        if self._simulator is None:
            self._simulator = ListeningSimulator(
                accounts=self.accounts,
                seed=self.seed,
                epoch=dt.date.fromisoformat(self.epoch),
                plays_per_active_day=self.plays_per_active_day,
            )
        return self._simulator

    def day(self, day: dt.date) -> pd.DataFrame:
        return self.simulator().day(day)
