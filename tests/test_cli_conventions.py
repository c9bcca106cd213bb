"""The conventions both commands keep (issue 17, item 8): --version, -q/-v, progress bars only on
a terminal, --json on stdout, one line and exit 2 for every bad argument, and Ctrl-C as one line
and exit 130."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from tinyengine import progress
from tinyengine.cli import main as engine_main
from tinynas.cli import main as nas_main

from .conftest import ROOT

HELLO = "tflm_hello_world_int8.tflite"
MCUNET = str(ROOT / "examples" / "mcunet" / "mcunet-in3.json")
SPACE = ["space", "--sram", "2KB", "--flash", "8KB", "--samples", "10", "--workers", "1"]


def command(prog: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"{prog}.cli", *args], capture_output=True,
                          text=True, **kw)


def in_process(capsys, prog: str, *args: str) -> subprocess.CompletedProcess:
    """The command's main() in this process: fast, for what needs no fresh interpreter."""
    main = {"tinyengine": engine_main, "tinynas": nas_main}[prog]
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse: --help, --version and its errors
        code = int(e.code or 0)
    finally:
        progress.set_verbosity(progress.NORMAL)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([prog, *args], code, out, err)


def assert_one_line_error(run: subprocess.CompletedProcess, prog: str, *words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), run.stderr
    for w in words:
        assert w in lines[0], lines[0]


# --version, -q, -v

@pytest.mark.parametrize("prog", ["tinyengine", "tinynas"])
def test_version(prog):
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    run = command(prog, "--version")
    assert run.returncode == 0 and run.stdout.strip() == f"{prog} {version}", run


def test_quiet_and_verbose_before_or_after_the_command(capsys, tmp_path):
    for args in (["-q", *SPACE], [*SPACE, "-q"]):
        run = in_process(capsys, "tinynas", *args, "-o", str(tmp_path / "q"))
        assert run.returncode == 0 and run.stderr == "", run.stderr
    for args in (["-v", *SPACE], [*SPACE, "--verbose"]):
        run = in_process(capsys, "tinynas", *args, "-o", str(tmp_path / "v"))
        assert run.returncode == 0 and "(100%)" in run.stderr, run.stderr
    assert_one_line_error(in_process(capsys, "tinynas", "-q", "cost", MCUNET, "-v"), "tinynas",
                          "-q/--quiet", "-v/--verbose")
    assert_one_line_error(in_process(capsys, "tinyengine", "-v", "plan", "x.tflite", "-q"),
                          "tinyengine", "-q/--quiet")


# Progress: a bar on a terminal, plain lines in a log, nothing under -q

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log():
    from tqdm import tqdm

    try:
        assert isinstance(progress.progress_bar(total=3, desc="t", file=_Terminal()), tqdm)
        progress.set_verbosity(progress.VERBOSE)
        log = io.StringIO()
        with progress.progress_bar(total=20, desc="work", unit="step", file=log) as bar:
            for i in range(20):
                bar.update(1)
                bar.set_postfix(loss=f"{i}")
        lines = log.getvalue().splitlines()
        assert "\r" not in log.getvalue()
        # Every tenth, each line with the figures of the step it reports.
        assert len(lines) == 10, lines
        assert lines[0].startswith("work: 2/20 step (10%), ") and lines[0].endswith("loss=1")
        assert lines[-1].startswith("work: 20/20 step (100%), ") and lines[-1].endswith("loss=19")
        progress.set_verbosity(progress.NORMAL)  # a short run in a log stays silent
        log = io.StringIO()
        assert list(progress.progress_bar(range(5), desc="w", file=log)) == list(range(5))
        assert log.getvalue() == ""
        progress.set_verbosity(progress.QUIET)
        assert list(progress.progress_bar(range(3), desc="w", file=_Terminal())) == [0, 1, 2]
    finally:
        progress.set_verbosity(progress.NORMAL)


def test_no_progress_bar_in_a_log(tmp_path):
    run = command("tinynas", *SPACE, "-o", str(tmp_path / "a"))  # stderr is a pipe, as in CI
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr and "chunk/s" not in run.stderr, run.stderr
    run = command("tinynas", "-v", *SPACE, "-o", str(tmp_path / "b"))
    assert run.returncode == 0, run.stderr
    assert re.search(r"^stage one .*: 25/25 chunk \(100%\)", run.stderr, re.M), run.stderr


# --json: one object on stdout

def test_compile_and_verify_json(shared_models, tmp_path):
    model = str(shared_models / HELLO)
    out = tmp_path / "p"
    run = command("tinyengine", "compile", model, "-o", str(out), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    report = json.loads((out / "report.json").read_text())
    assert result["project"] == str(out) and result["ops"] == len(report["ops"])
    for key in ("arena_bytes", "flash_bytes", "macs", "arena_counts"):
        assert result[key] == report[key], key
    run = command("tinyengine", "verify", model, "--random", "4", "--no-tflm", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["exact"] is True and result["arena_bytes"] == report["arena_bytes"]
    assert [(o["index"], o["inputs"], o["max_diff_reference"], o["max_diff_tflm"])
            for o in result["outputs"]] == [(0, 4, 0.0, None)]


def test_cost_json(capsys):
    run = in_process(capsys, "tinynas", "cost", MCUNET, "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    text = in_process(capsys, "tinynas", "cost", MCUNET).stdout  # the same figures, for people
    assert f"({result['peak_sram']} B)" in text and f"({result['flash_bytes']} B)" in text
    assert f"{result['macs']:,} MACs" in text and f"{result['parameters']:,} parameters" in text
    assert result["patches"] is None


def test_bench_json(shared_models, tmp_path):
    from tinyengine.target import find_qemu

    try:
        find_qemu()
    except Exception as e:
        pytest.skip(f"no QEMU: {e}")
    out = tmp_path / "p"
    assert command("tinyengine", "compile", str(shared_models / HELLO), "-o", str(out),
                   "--target", "cortex-m4").returncode == 0
    run = command("tinyengine", "bench", str(out), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["core"] == "cortex-m4" and result["total_instructions"] > 0
    run = command("tinyengine", "bench", str(out), "--json", str(tmp_path / "b.json"))
    assert run.returncode == 0 and "instructions" in run.stdout, run.stderr
    assert json.loads((tmp_path / "b.json").read_text()) == result


# Bad arguments: one line, exit 2, nothing written

LONG = "a" * 300


@pytest.mark.parametrize("args, words", [
    (["space", "--sram", "2KB", "--flash", "8KB", "--macs", "1e999"], ["--macs", "1e999"]),
    (["space", "--sram", "9" * 400 + "KB", "--flash", "8KB"], ["--sram"]),
    (["space", "--sram", "2KB", "--flash", "8KB", "--macs", "0"], ["--macs", "positive"]),
    (["space", "--sram", "2KB", "--flash", "8KB", "--seed", "-1"], ["--seed", "-1"]),
    (["space", "--sram", "2KB", "--flash", "8KB", "--seed", str(2**70)], ["--seed"]),
    (["space", "--sram", "2KB", "--flash", "8KB", "--min-fraction", "nan"], ["--min-fraction"]),
    (["pipeline", "--width-mult", "nan", "--quick"], ["--width-mult", "nan"]),
    (["pipeline", "--width-mult", "inf", "--quick"], ["--width-mult", "inf"]),
    (["train", "--width", "0.5", "--lr", "nan"], ["--lr"]),
    (["search", "--supernet", "x.pt", "--sram", "2KB", "--flash", "8KB", "--split-seed", "-3"],
     ["--split-seed"]),
    (["space", "--sram", "2KB"], ["required"]),
])
def test_tinynas_bad_arguments(capsys, tmp_path, args, words):
    out = tmp_path / "out"
    assert_one_line_error(in_process(capsys, "tinynas", *args, "-o", str(out)), "tinynas", *words)
    assert not out.exists()


def test_bad_argument_through_the_entry_point(tmp_path):
    assert_one_line_error(command("tinynas", "space", "--sram", "2KB", "--flash", "8KB",
                                  "--macs", "1e999", "-o", str(tmp_path / "o")), "tinynas")
    assert_one_line_error(command("tinyengine", "verify", "m.tflite", "--seed", "-1"),
                          "tinyengine", "--seed")


def test_tinyengine_bad_arguments(capsys, shared_models, tmp_path):
    model = str(shared_models / HELLO)
    assert_one_line_error(in_process(capsys, "tinyengine", "compile", model, "-o",
                                     str(tmp_path / LONG)), "tinyengine")
    assert_one_line_error(in_process(capsys, "tinyengine", "compile", model, "-o",
                                     str(tmp_path / "p"), "--prefix", LONG), "tinyengine",
                          "prefix")
    assert_one_line_error(in_process(capsys, "tinyengine", "compile", model, "-o",
                                     str(tmp_path / "p"), "--max-mac-overhead", "nan"),
                          "tinyengine", "--max-mac-overhead")
    assert_one_line_error(in_process(capsys, "tinyengine", "compile"), "tinyengine",
                          "required")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_run_unwritable_output(shared_models, tmp_path):
    import numpy as np

    out = tmp_path / "p"
    assert command("tinyengine", "compile", str(shared_models / HELLO), "-o",
                   str(out)).returncode == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 1), np.int8))
    x = str(tmp_path / "x.npy")
    if Path("/dev/full").exists():  # a write that fails half way: the name, not None
        assert_one_line_error(command("tinyengine", "run", str(out), "--input", x, "--output",
                                      "/dev/full"), "tinyengine", "cannot write /dev/full")
    assert_one_line_error(command("tinyengine", "run", str(out), "--input", x, "--output",
                                  str(tmp_path)), "tinyengine", str(tmp_path), "directory")
    assert_one_line_error(command("tinyengine", "run", str(out), "--input", x, "--output",
                                  str(tmp_path / "no" / "y.npy")), "tinyengine", "cannot write")
    assert_one_line_error(command("tinyengine", "run", str(out), "--input", x, "--output",
                                  str(tmp_path / (LONG + ".npy"))), "tinyengine", "cannot write")


# Ctrl-C: one line, exit 130, nothing left behind

def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


def _cpu_seconds(pid: int) -> float:
    """CPU time of the process and everything under it (user + system; children that ended
    are in its cutime/cstime, live ones are summed), from /proc; 0 where it cannot be read.
    The commands may do their work in child processes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir()
                for k in (t / "children").read_text().split()]
    except OSError:
        return 0.0
    own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_seconds(k) for k in kids)


def _as_at_a_terminal() -> None:
    """In the child before exec: its own session, and Ctrl-C at its default. A process started
    with SIGINT ignored keeps it ignored (Python then installs no KeyboardInterrupt handler),
    and the test runner's workers may be such processes: the command would never see Ctrl-C."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Ended(NamedTuple):
    """How an interrupted command ended; `left`: the child processes it had when signalled that
    still ran 10 s after it had ended."""

    returncode: int
    stdout: str
    stderr: str
    left: list[int]


def _interrupt(args: list[str], after: float, tmp: Path, group: bool = False,
               workers: int = 0, sig: int = signal.SIGINT) -> Ended:
    """Run `python ARGS`, press Ctrl-C (or send `sig`) once it is at work, and return how it
    ended.

    "At work" is measured in the command's own CPU seconds (or, with workers, from when they
    exist): on a loaded machine wall-clock seconds may all go to imports, and the interrupt
    would test Python's start-up rather than the command. The command runs in its own session,
    and whatever is left of it (workers included) is killed when the test ends, pass or fail."""
    env = dict(os.environ, TMPDIR=str(tmp))
    p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 300
        if workers:
            while len(_children(p.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(after)
        else:
            while (_cpu_seconds(p.pid) < after and p.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.1)
        assert p.poll() is None, "the command ended before it could be interrupted"
        kids = _children(p.pid)
        if group:  # a terminal's Ctrl-C reaches the whole process group, workers included
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        # multiprocessing's resource tracker ends once its last user has: allow it a moment
        # (a worker left behind trains for minutes)
        deadline = time.monotonic() + 10
        while any(_running(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        return Ended(p.returncode, out, err, [k for k in kids if _running(k)])
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def _ends_interrupted(stderr: str, tool: str, how: str = "interrupted") -> bool:
    """One line says so, last; before it only progress lines (a run over 10 s reports them),
    never a traceback."""
    lines = stderr.splitlines()
    return (bool(lines) and lines[-1] == f"{tool}: {how}" and "Traceback" not in stderr
            and lines.count(f"{tool}: {how}") == 1)


def test_ctrl_c_tinyengine(shared_models, tmp_path):
    (tmp_path / "tmp").mkdir()
    run = _interrupt(["-m", "tinyengine.cli", "verify", str(shared_models / HELLO), "--random",
                      "100000", "--no-tflm"], 6, tmp_path / "tmp")
    assert run.returncode == 130 and _ends_interrupted(run.stderr, "tinyengine"), run.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary project is gone


def test_ctrl_c_tinynas_train(tmp_path):
    out = tmp_path / "sn"
    run = _interrupt(["-m", "tinynas.cli", "train", "--width", "0.25", "--epochs", "50",
                      "--largest-epochs", "50", "-o", str(out)], 8, tmp_path)
    assert run.returncode == 130 and _ends_interrupted(run.stderr, "tinynas"), run.stderr
    # No half-written checkpoint; on a loaded machine the interrupt may come before the output
    # directory exists at all.
    assert not out.exists() or {p.name for p in out.iterdir()} <= {"supernet.pt"}


def test_ctrl_c_tinynas_space_workers(tmp_path):
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/PID/task/PID/children to see the workers start")
    run = _interrupt(["-m", "tinynas.cli", "space", "--sram", "64KB", "--flash", "256KB",
                      "--dataset", "imagenet", "--samples", "100000", "--workers", "2", "-o",
                      str(tmp_path / "s")], 2, tmp_path, group=True, workers=2)
    assert run.returncode == 130 and _ends_interrupted(run.stderr, "tinynas"), run.stderr


# SIGTERM (`kill`, a CI job's timeout) reaches the command alone, not its workers: the command
# ends as on Ctrl-C, and takes its workers with it.

def test_sigterm_stops_the_workers_of_tinynas_space(tmp_path):
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/PID/task/PID/children to see the workers start")
    run = _interrupt(["-m", "tinynas.cli", "space", "--sram", "64KB", "--flash", "256KB",
                      "--dataset", "imagenet", "--samples", "100000", "--workers", "2", "-o",
                      str(tmp_path / "s")], 2, tmp_path, workers=2, sig=signal.SIGTERM)
    assert run.returncode == 143 and _ends_interrupted(run.stderr, "tinynas", "terminated"), \
        run.stderr
    assert run.left == []


# A search's scratch fitness trains candidates in worker processes; each training can take a
# minute. A terminated command must end them, not leave them training for a parent that is gone.
SCRATCH_WORKERS = """
import sys
import numpy as np
from tinyengine.cli_common import run_command
from tinynas.budget import Budget
from tinynas.data import load_digits, split
from tinynas.scratch_fitness import ScratchEvaluator
from tinynas.space import PRESETS
from tinynas.supernet import Supernet

def command():
    parts = split(load_digits(), seed=0)
    net = Supernet(PRESETS["digits"], 0.375)
    ev = ScratchEvaluator(net, parts.train, parts.val, Budget(64 * 1024, 256 * 1024),
                          epochs=100000, lr=1e-2, seed=0, patch="off", views=0, workers=2)
    rng = np.random.default_rng(0)
    try:
        ev.prefetch([net.sample(rng, 8) for _ in range(4)])
    finally:
        ev.close()
    return 0

sys.exit(run_command("fitness", command))
"""


def test_sigterm_stops_the_scratch_fitness_workers_mid_training(tmp_path):
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/PID/task/PID/children to see the workers start")
    # three children: the two workers and multiprocessing's resource tracker
    run = _interrupt(["-c", SCRATCH_WORKERS], 3, tmp_path, workers=3, sig=signal.SIGTERM)
    assert run.returncode == 143 and _ends_interrupted(run.stderr, "fitness", "terminated"), \
        run.stderr
    assert run.left == []
