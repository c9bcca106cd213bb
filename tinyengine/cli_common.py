"""What `tinyengine` and `tinynas` share as commands: --version, -q/-v, one-line errors with
exit status 2, finite numbers and valid seeds in every option, and Ctrl-C as one line and 130
(SIGTERM, a `kill` or a CI job's timeout, as one line and 143).

A user's mistake is one line `PROG: error: ...` and exit 2, whether argparse finds it (a
missing option, a value that is not a number) or the command does (TinyEngineError, or an
OSError such as a file name too long or a full disk). Tracebacks are for our own bugs; -v adds
the traceback below the line for a bug report.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from . import progress
from .errors import TinyEngineError

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command ended by Ctrl-C
TERMINATED = 143  # 128 + SIGTERM
SEED_LIMIT = 2**32  # numpy, torch and random all take seeds in [0, 2**32)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the commands' one-line form (usage stays in --help)."""

    def error(self, message: str) -> NoReturn:
        root = self.prog.split()[0]
        self.exit(2, f"{root}: error: {message} (see `{self.prog} --help`)\n")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text} is out of range: a seed is 0 .. {SEED_LIMIT - 1}")
    return value


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                found += _parsers(sub)
    return found


def add_conventions(parser: argparse.ArgumentParser, version: str) -> None:
    """--version, and -q/-v before or after the sub-command, on `parser` and all its
    sub-commands; every float option finite and every --seed / --split-seed a valid seed.

    The option checks are applied here, to options defined in several modules, so that a new
    option gets them without having to remember them."""
    parser.add_argument("--version", action="version", version=f"{parser.prog} {version}")
    # Distinct names at the top: a sub-command's own default would overwrite the value otherwise.
    parser.add_argument("-q", "--quiet", dest="top_quiet", action="store_true",
                        help="no progress output")
    parser.add_argument("-v", "--verbose", dest="top_verbose", action="store_true",
                        help="progress lines in logs at every tenth of the work; the traceback "
                             "under an error line")
    for p in _parsers(parser)[1:]:
        if "-q" not in p._option_string_actions:
            p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        if "-v" not in p._option_string_actions:
            p.add_argument("-v", "--verbose", action="store_true",
                           help="more progress output; the traceback under an error line")
    for p in _parsers(parser):
        for action in p._actions:
            if action.type is float:
                action.type = finite_float
            elif action.type is int and action.dest in ("seed", "split_seed"):
                action.type = seed


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, merge -q/-v given before and after the sub-command, and set the verbosity."""
    args = parser.parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False) or args.top_quiet)
    args.verbose = bool(getattr(args, "verbose", False) or args.top_verbose)
    if args.quiet and args.verbose:
        parser.error("-q/--quiet and -v/--verbose contradict each other; pass one of them")
    progress.set_verbosity(progress.QUIET if args.quiet else
                           progress.VERBOSE if args.verbose else progress.NORMAL)
    return args


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it ends as on Ctrl-C: `finally` blocks and
    context managers run (temporary directories removed, worker processes stopped). Python's
    default for SIGTERM ends the process at once, and its worker processes, which get no signal,
    would go on working for a parent that has gone."""


_held = 0  # termination_held's depth
_pending = False  # a SIGTERM came while held


def _terminate(signum: int, frame: object) -> None:
    global _pending
    if _held:
        _pending = True
        return
    raise Terminated


@contextmanager
def termination_held() -> Iterator[None]:
    """A SIGTERM that comes inside raises Terminated only on the way out: for work that must
    not stop half way, such as sending a starting worker process its data (cut short, the
    worker dies with a traceback of its own). Blocking the signal would not do: the process's
    other threads (torch's among them) would take it, and Python would still raise it in the
    main thread between two parts of the write."""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if not _held and _pending:
        _pending = False
        raise Terminated


def run_command(prog: str, command: Callable[[], int]) -> int:
    """Run a command (parsing included): user errors as one line and 2, Ctrl-C as one line
    and 130, SIGTERM as one line and 143."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminate) if main else None
    try:
        return _run(prog, command)
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


def _run(prog: str, command: Callable[[], int]) -> int:
    try:
        return command()
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        # Whatever the command had open was closed on the way here (temporary directories,
        # checkpoints written by rename), so nothing is left half-written.
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except TinyEngineError as e:
        message = (str(e).splitlines() or [""])[0]
    except OSError as e:
        # Not our bug but the machine's answer: a name too long, a full disk, no permission.
        what = f"{e.filename}: " if e.filename is not None else ""
        message = f"{what}{e.strerror or e}"
    print(f"{prog}: error: {message}", file=sys.stderr)
    if progress.verbosity() >= progress.VERBOSE:
        traceback.print_exc()
    return 2
