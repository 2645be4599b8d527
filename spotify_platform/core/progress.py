"""How far a step over a range of days has got: the figures a progress bar draws and the
line a run log shows, from one object so that the two never disagree."""

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """A step's figures after a day or batch of days: `line` says what was just done."""

    line: str
    days_done: int
    days_total: int
    plays: int
    elapsed: float

    def __str__(self) -> str:
        return self.line

    def seconds_left(self) -> float | None:
        """The step's time still to go at its pace so far; None before the first day."""
        if not self.days_done:
            return None
        return self.elapsed / self.days_done * max(self.days_total - self.days_done, 0)


# Told of each day or batch as it finishes (a Progress), and of other news (a plain line).
Log = Callable[[Progress | str], None]


class Stopwatch:
    """Progress of one step, timed from its creation; `days` names what it counts."""

    def __init__(self, days_total: int, days: str = "days") -> None:
        self.days_total, self.days, self.started = days_total, days, time.monotonic()

    def progress(self, line: str, days_done: int, plays: int) -> Progress:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        done = f"{days_done:,} of {self.days_total:,} {self.days}"
        rate = f"{done}, {plays:,} plays in {elapsed:.1f} s"
        return Progress(
            line=f"{line}; {rate} ({plays / elapsed:,.0f} plays/s)",
            days_done=days_done,
            days_total=self.days_total,
            plays=plays,
            elapsed=elapsed,
        )
