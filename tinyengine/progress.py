"""Progress output for long work, in one place for both commands.

On a terminal a tqdm bar; in a log (stderr is not a terminal) a few plain lines, because a bar
redrawn with carriage returns turns a CI log into one unreadable line; nothing under --quiet.
In a log a line is written when the work crosses a tenth of its total, and then only if
`LOG_INTERVAL` seconds have passed since the previous line (every tenth under --verbose), so
short runs stay silent and long ones say where they are.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

QUIET, NORMAL, VERBOSE = -1, 0, 1
LOG_INTERVAL = 10.0  # seconds between plain progress lines at normal verbosity

_verbosity = NORMAL


def set_verbosity(level: int) -> None:
    """QUIET (-q), NORMAL or VERBOSE (-v); the commands set it once from their options."""
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    return _verbosity


def progress_bar(iterable: Iterable[Any] | None = None, *, desc: str, total: int | None = None,
                 unit: str = "it", initial: int = 0, enabled: bool = True,
                 file: IO[str] | None = None) -> Any:
    """A progress display with tqdm's interface (iterate over it, or update(n), set_postfix(),
    close(), use as a context manager): a bar on a terminal, plain lines in a log, inert when
    `enabled` is False or the verbosity is QUIET."""
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not enabled or _verbosity <= QUIET:
        return tqdm(iterable, total=total, disable=True)
    if stream.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=False,
                    file=stream)
    return PlainProgress(iterable, desc=desc, total=total, unit=unit, initial=initial,
                         file=stream, interval=0.0 if _verbosity >= VERBOSE else LOG_INTERVAL)


class PlainProgress:
    """tqdm's interface, written as whole lines: `desc: n/total unit (p%), elapsed, postfix`.

    A line that falls due on update() waits for the next call: callers update, then set the
    postfix (the figures of the step just done), and the line should carry both."""

    def __init__(self, iterable: Iterable[Any] | None, *, desc: str, total: int | None,
                 unit: str, initial: int, file: IO[str], interval: float) -> None:
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.n = initial
        self.file, self.interval = file, interval
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._tenth = self._tenths(initial)
        self._due = False
        self._written = -1  # the n of the last line written

    def _tenths(self, n: int) -> int:
        return 10 * n // self.total if self.total else n

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None, "iterate over a progress_bar made from an iterable"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self._flush()
        self.n += n
        tenth = self._tenths(self.n)
        if tenth > self._tenth and time.monotonic() - self._last >= self.interval:
            self._due, self._tenth = True, tenth

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())
        self._flush()

    def close(self) -> None:
        # The last state, if a line was written before and this one is new: a log then shows
        # where the work ended (a complete total, or how far an interrupted run got).
        if self._due or (self._written >= 0 and self._written != self.n):
            self._write()

    def _flush(self) -> None:
        if self._due:
            self._write()

    def _write(self) -> None:
        now = time.monotonic()
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n // self.total}%)" if self.total else ""
        elapsed = int(now - self._start)
        text = f"{self.desc}: {count} {self.unit}{pct}, {elapsed // 60}m{elapsed % 60:02d}s"
        print(text + (f", {self.postfix}" if self.postfix else ""), file=self.file, flush=True)
        self._due, self._last, self._written = False, now, self.n
