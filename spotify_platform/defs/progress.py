"""A long step's progress in the run log, with its figures attached for whoever watches.

Steps log through `get_dagster_logger`, whose records Dagster copies into the run's log (the
run page in the UI, on any instance). The step's `Progress` rides on each record, so a
handler on the same logger (the CLI's progress bar) draws from the very figures the log shows.
"""

import logging
from dataclasses import dataclass

from dagster import AssetExecutionContext, get_dagster_logger

from spotify_platform.core.progress import Log, Progress

LOGGER = "spotify_platform.progress"
FIELD = "step_progress"


@dataclass(frozen=True)
class StepProgress:
    """A step's name (its asset, for one-asset steps) and how far it has got."""

    step: str
    progress: Progress


def progress_logger() -> logging.Logger:
    return get_dagster_logger(LOGGER)


def step_log(context: AssetExecutionContext, name: str | None = None) -> Log:
    """What a step's core code is given to report to: each `Progress` and any other line.

    `name` tells apart the parts of a step that makes several assets (one bar each)."""
    step = name or context.op_def.name.removeprefix("warehouse__").removeprefix("lake__")
    logger = progress_logger()

    def log(item: Progress | str) -> None:
        if isinstance(item, Progress):
            logger.info(item.line, extra={FIELD: StepProgress(step, item)})
        else:
            logger.info(item)

    return log
