"""The CLI's view of a run's progress: a bar redrawn in place on a terminal, one line per day
or batch anywhere else (a log file, CI), both drawn from the steps' `Progress` records."""

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from spotify_platform.defs.progress import FIELD, StepProgress, progress_logger

BAR_WIDTH = 24
# The longest step name that reports progress (agg_account_segment_daily), so bars line up.
NAME_WIDTH = 25


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def bar(step: StepProgress, run_elapsed: float) -> str:
    """The step, its share of days as a bar, days, plays, the run's time and the step's
    estimate to go at its pace so far."""
    p = step.progress
    share = p.days_done / p.days_total if p.days_total else 1.0
    filled = min(round(share * BAR_WIDTH), BAR_WIDTH)
    left = p.seconds_left()
    estimate = f"  ~{clock(left)} left" if left else ""
    return (
        f"{step.step:<{NAME_WIDTH}} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
        f"{p.days_done:,}/{p.days_total:,} days  {p.plays:,} plays  "
        f"{clock(run_elapsed)} elapsed{estimate}"
    )


class ProgressPrinter(logging.Handler):
    """Draws each step's progress records as they arrive."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.terminal = stream.isatty()
        self.started = time.monotonic()
        self.step: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, FIELD, None)
        if not isinstance(step, StepProgress):
            return
        elapsed = time.monotonic() - self.started
        if not self.terminal:
            line = step.progress.line
            prefix = "" if line.startswith(step.step) else f"{step.step}: "
            self.stream.write(f"[{clock(elapsed)}] {prefix}{line}\n")
        else:
            # A new step keeps the last one's final bar on its own line.
            if self.step is not None and step.step != self.step:
                self.stream.write("\n")
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + bar(step, elapsed)[:width].ljust(width))
            self.step = step.step
        self.stream.flush()

    def finish(self) -> None:
        if self.terminal and self.step is not None:
            self.stream.write("\n")
            self.stream.flush()


@contextmanager
def progress_shown(stream: TextIO) -> Iterator[ProgressPrinter]:
    """Progress records of runs executed in this process are drawn on `stream` meanwhile."""
    printer = ProgressPrinter(stream)
    logger = progress_logger()
    logger.addHandler(printer)
    try:
        yield printer
    finally:
        logger.removeHandler(printer)
        printer.finish()
