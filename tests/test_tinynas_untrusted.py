"""tinynas on untrusted input (issue 17): checkpoints are data, not code, and malformed
architecture, search space and dataset files end in one line and exit 2, quickly.

A crafted checkpoint here is a pickle whose loading would run `touch MARKER`: each test checks
both the refusal and that the marker file was never created.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tinynas.cli import main
from tinynas.data import load_digits, split
from tinynas.errors import TinyNASError
from tinynas.space import PRESETS
from tinynas.train import CHECKPOINT, TrainConfig, supernet_from_checkpoint, train_supernet

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
ARCH = ROOT / "examples" / "mcunet" / "mcunet-in0.json"
TRAIN = ["train", "-q", "--width", "0.25", "--resolutions", "8", "--largest-epochs", "1",
         "--epochs", "1"]


class _Touch:
    """Unpickling this runs a shell command that creates `path`."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.path))}",))


def _crafted(path: Path, marker: Path) -> Path:
    """A checkpoint with every key a real one has, its weights replaced by the payload."""
    cfg = TrainConfig(width_mult=0.25, resolutions=(8,), largest_epochs=1, epochs=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "space": PRESETS["digits"].to_dict(), "epoch": 1,
                "model": _Touch(marker), "optimizer": {}, "history": []}, path)
    return path


def _one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinynas: error: ") and "\n" not in err, err
    return err


# -- checkpoints ----------------------------------------------------------------------------


@pytest.fixture()
def crafted(tmp_path):
    marker = tmp_path / "MARKER"
    return _crafted(tmp_path / "evil" / CHECKPOINT, marker), marker


def test_search_refuses_a_checkpoint_that_runs_code(crafted, tmp_path, capsys):
    ckpt, marker = crafted
    err = _one_line_error(capsys, ["search", "-q", "--supernet", str(ckpt), "--sram", "2KB",
                                   "--flash", "8KB", "-o", str(tmp_path / "out")])
    assert not marker.exists(), "unpickling the checkpoint ran its code"
    assert str(ckpt) in err and "refused" in err and "system" in err
    assert not (tmp_path / "out").exists()


def test_deploy_refuses_a_checkpoint_that_runs_code(crafted, tmp_path, capsys):
    ckpt, marker = crafted
    err = _one_line_error(capsys, ["deploy", "-q", "--supernet", str(ckpt), "--arch", str(ARCH),
                                   "-o", str(tmp_path / "out")])
    assert not marker.exists(), "unpickling the checkpoint ran its code"
    assert str(ckpt) in err and "refused" in err


def test_train_resume_refuses_a_checkpoint_that_runs_code(crafted, capsys):
    ckpt, marker = crafted
    err = _one_line_error(capsys, TRAIN + ["-o", str(ckpt.parent)])
    assert not marker.exists(), "unpickling the checkpoint ran its code"
    assert str(ckpt) in err and "refused" in err


def test_pipeline_resume_refuses_a_checkpoint_that_runs_code(crafted, capsys):
    """The pipeline finds the checkpoint in its output directory and resumes from it."""
    ckpt, marker = crafted
    err = _one_line_error(capsys, ["pipeline", "--quick", "-q", "--width-mult", "0.25",
                                   "-o", str(ckpt.parent)])
    assert not marker.exists(), "unpickling the checkpoint ran its code"
    assert str(ckpt) in err and "refused" in err


def test_a_checkpoint_holding_other_objects_is_refused_by_name(tmp_path):
    """Not code, but not plain data either (a numpy array): refused, naming what it asks for."""
    path = tmp_path / CHECKPOINT
    torch.save({"config": {}, "space": {}, "epoch": 1, "model": np.zeros(3), "optimizer": {},
                "history": []}, path)
    with pytest.raises(TinyNASError, match=r"refused.*numpy"):
        supernet_from_checkpoint(path)


@pytest.mark.parametrize("change", ["model", "space", "config", "epoch", "keys"])
def test_a_damaged_checkpoint_is_one_line(tmp_path, capsys, change):
    """Plain data, but not what tinynas wrote: weights of other shapes, a space that does not
    parse, settings of the wrong types, an epoch out of range, keys missing."""
    good = tmp_path / "good"
    assert main(TRAIN + ["--stop-after", "1", "-o", str(good)]) == 0
    state = torch.load(good / CHECKPOINT, weights_only=True)
    if change == "model":
        state["model"] = {k: v[:1] if v.dim() else v for k, v in state["model"].items()}
    elif change == "space":
        state["space"] = {**state["space"], "stage_bases": [10 ** 12]}
    elif change == "config":
        state["config"] = {**state["config"], "resolutions": ["8"], "width_mult": float("nan")}
    elif change == "epoch":
        state["epoch"] = 99
    else:
        del state["model"]
    bad = tmp_path / "bad"
    bad.mkdir()
    torch.save(state, bad / CHECKPOINT)
    if change != "epoch":  # search reads weights and settings, not the training state
        err = _one_line_error(capsys, ["search", "-q", "--supernet", str(bad / CHECKPOINT),
                                       "--sram", "2KB", "--flash", "8KB", "-o",
                                       str(tmp_path / "s")])
        assert str(bad / CHECKPOINT) in err
    if change != "space":  # a resume compares the space with its own first
        err = _one_line_error(capsys, TRAIN + ["-o", str(bad)])
        assert str(bad / CHECKPOINT) in err


def test_resume_says_what_it_resumed_from_and_stays_exact(tmp_path, capsys):
    """A resumed run names the file and the epoch, and (loading data only) still ends exactly
    where the uninterrupted run does."""
    parts = split(load_digits(), seed=0)
    rng = np.random.default_rng(0)
    train = parts.train.subset(np.sort(rng.choice(len(parts.train), 96, replace=False)), "t")
    val = parts.val.subset(np.arange(40), "v")
    cfg = TrainConfig(width_mult=0.25, resolutions=(8,), largest_epochs=1, epochs=2, batch=32)
    whole = train_supernet(PRESETS["digits"], train, val, cfg, tmp_path / "a", progress=False)
    train_supernet(PRESETS["digits"], train, val, cfg, tmp_path / "b", progress=False,
                   stop_after=2)
    capsys.readouterr()
    resumed = train_supernet(PRESETS["digits"], train, val, cfg, tmp_path / "b")
    out = capsys.readouterr().out
    assert f"resuming from {tmp_path / 'b' / CHECKPOINT}: epoch 2 of 3 done" in out
    sa, sb = whole.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h.loss for h in resumed.history] == [h.loss for h in whole.history]


# -- architecture and search space files -----------------------------------------------------


def test_the_train_command_names_the_checkpoint_it_resumed_from(tmp_path, capsys):
    out = tmp_path / "sn"
    assert main(TRAIN + ["--stop-after", "1", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(TRAIN + ["-o", str(out)]) == 0
    assert f"resumed from {out / CHECKPOINT} after epoch 1" in capsys.readouterr().out


def test_cost_of_a_binary_file_is_one_line(tmp_path, capsys):
    """`tinynas cost supernet.pt`: the wrong file, not a UnicodeDecodeError."""
    path = tmp_path / CHECKPOINT
    torch.save({"model": {"w": torch.randn(64)}}, path)
    err = _one_line_error(capsys, ["cost", str(path)])
    assert str(path) in err and "not a text file" in err


@pytest.mark.parametrize("text, words", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"resolution": ' + "7" * 5000 + "}", "not valid JSON"),
])
def test_cost_of_pathological_json_is_one_line(tmp_path, capsys, text, words):
    path = tmp_path / "arch.json"
    path.write_text(text)
    err = _one_line_error(capsys, ["cost", str(path)])
    assert str(path) in err and words in err


def _arch_with(**changes) -> dict:
    d = json.loads(ARCH.read_text())
    for key, value in changes.items():
        if key == "channels":
            d["stages"][0]["channels"] = value
        elif key == "kernel":
            d["stages"][0]["blocks"][0]["kernel"] = value
        elif key == "expand":
            d["stages"][0]["blocks"][0]["expand"] = value
        else:
            d[key] = value
    return d


@pytest.mark.parametrize("changes, words", [
    ({"stem_channels": 10 ** 9}, "stem_channels"),
    ({"in_channels": 10 ** 12}, "in_channels"),
    ({"num_classes": 10 ** 12}, "num_classes"),
    ({"head_channels": 10 ** 12}, "head_channels"),
    ({"channel_divisor": 10 ** 12}, "channel_divisor"),
    ({"channels": 10 ** 12}, "stages[0].channels"),
    ({"kernel": 10 ** 9 + 1}, "stages[0].blocks[0].kernel"),
    ({"expand": 10 ** 9}, "stages[0].blocks[0].expand"),
    ({"resolution": 10 ** 30}, "resolution"),
    ({"resolution": 40_000}, "bytes"),  # each number plausible, the activations not
    ({"channels": 1 << 20, "head_channels": 1 << 20}, "weights"),
])
def test_cost_of_huge_channel_counts_is_one_line_and_quick(tmp_path, capsys, changes, words):
    """Refused from the description, before anything the size of the network is allocated."""
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(_arch_with(**changes)))
    t = time.perf_counter()
    err = _one_line_error(capsys, ["cost", str(path)])
    assert time.perf_counter() - t < 5
    assert str(path) in err and words in err


def test_the_shipped_architectures_are_within_the_limits(capsys):
    for path in sorted((ROOT / "examples" / "mcunet").glob("*.json")):
        assert main(["cost", str(path)]) == 0, path


def test_a_deep_architecture_with_patch_auto_is_refused_quickly(tmp_path):
    """1,000 blocks: the patch search would run for hours without a word; it is refused at
    once, and the same file prices in seconds without patches."""
    d = _arch_with(resolution=32)
    d["stages"] = [{"channels": 16, "stride": 1,
                    "blocks": [{"kernel": 3, "expand": 2}] * 1000}]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(d))
    cmd = [sys.executable, "-m", "tinynas.cli", "cost", str(path)]
    try:
        run = subprocess.run(cmd + ["--patch", "auto"], capture_output=True, text=True,
                             timeout=45, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("cost --patch auto on 1,000 blocks ran for more than 45 s")
    assert run.returncode == 2, run.stderr[-2000:]
    err = run.stderr.strip()
    assert err.startswith("tinynas: error: ") and "\n" not in err and "--patch off" in err
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]


def test_an_absurdly_deep_architecture_is_refused(tmp_path, capsys):
    d = _arch_with(resolution=8)
    d["stages"] = [{"channels": 8, "stride": 1, "blocks": [{"kernel": 1, "expand": 1}] * 5000}]
    path = tmp_path / "deeper.json"
    path.write_text(json.dumps(d))
    err = _one_line_error(capsys, ["cost", str(path)])
    assert "5,001 blocks" in err


_DIGITS = json.dumps(PRESETS["digits"].to_dict())


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\xff", b"[" * 100_000,
    _DIGITS.replace('"stage_bases": [16, 32, 64]', '"stage_bases": [16, 32, 1e999]').encode(),
    _DIGITS.replace('"stage_bases": [16, 32, 64]', '"stage_bases": [16, 32, 1' + '0' * 400 +
                    "]").encode(),
    _DIGITS.replace('"depths": [1, 2]', '"depths": [1, 100000]').encode(),
])
def test_a_malformed_search_space_is_one_line(tmp_path, capsys, content):
    assert content != _DIGITS.encode()
    path = tmp_path / "space.json"
    path.write_bytes(content)
    err = _one_line_error(capsys, ["space", "--sram", "64KB", "--flash", "256KB", "--space",
                                   str(path), "-q", "-o", str(tmp_path / "out")])
    assert str(path) in err or "search space" in err


def test_a_search_space_with_huge_values_is_one_line(tmp_path, capsys):
    space = {**PRESETS["digits"].to_dict(), "stage_bases": [16, 32, 10 ** 30]}
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    err = _one_line_error(capsys, ["space", "--sram", "64KB", "--flash", "256KB", "--space",
                                   str(path), "-q", "-o", str(tmp_path / "out")])
    assert "stage_bases" in err


# -- datasets --------------------------------------------------------------------------------


def test_a_cifar_batch_that_runs_code_is_refused(tmp_path, capsys):
    """CIFAR-10's python batches are pickles too: only arrays, lists and bytes are built."""
    marker = tmp_path / "MARKER"
    data = tmp_path / "cifar"
    data.mkdir()
    with open(data / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Touch(marker), b"labels": [0]}, f, protocol=2)
    err = _one_line_error(capsys, TRAIN + ["--dataset", str(data), "-o", str(tmp_path / "o")])
    assert not marker.exists(), "unpickling the batch ran its code"
    assert "data_batch_1" in err and "refused" in err


def test_the_size_shortcut_never_admits_what_the_exact_count_refuses():
    """_validate skips the exact count when a bound from the largest values is within the
    limits: on random networks near the limits, construction refuses exactly what the exact
    count refuses."""
    from dataclasses import replace

    from tinynas import arch as arch_module
    from tinynas.arch import Arch, Block, Stage

    rng = np.random.default_rng(0)
    base = Arch.load(ARCH)
    verdicts = set()
    for _ in range(300):
        stages = tuple(Stage(int(rng.integers(1, 3000)), int(rng.choice([1, 2])),
                             tuple(Block(int(rng.choice([1, 3, 5, 7])), int(rng.integers(1, 7)))
                                   for _ in range(int(rng.integers(1, 5)))))
                       for _ in range(int(rng.integers(1, 5))))
        fields = dict(resolution=int(rng.integers(1, 3000)), stages=stages,
                      stem_channels=int(rng.integers(1, 3000)),
                      num_classes=int(rng.integers(1, 5000)))
        probe = object.__new__(Arch)  # the same fields, not validated
        for k, v in {**base.__dict__, **fields}.items():
            object.__setattr__(probe, k, v)
        try:
            arch_module._check_size(probe)
            exact = True
        except TinyNASError:
            exact = False
        try:
            replace(base, **fields)
            built = True
        except TinyNASError:
            built = False
        assert built == exact, fields
        verdicts.add(exact)
    assert verdicts == {True, False}  # the cases straddle the limits
