"""The `tinynas` stage-two commands end to end: pipeline, train (also under torchrun), errors.

The pipeline runs with --quick (a few epochs and evaluations): what is checked is the path from
data to a measured C project, not accuracy (benchmarks/pipeline_digits.py measures that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinynas.arch import Arch
from tinynas.cli import main
from tinynas.data import load_digits, resize_numpy, split
from tinynas.evolve import inherited
from tinynas.train import accuracy, supernet_from_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """The quick pipeline twice with the same seed, in two directories."""
    dirs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp("pipeline") / name
        assert main(["pipeline", "--quick", "-q", "-o", str(out)]) == 0
        dirs.append(out)
    return dirs


def test_pipeline_writes_a_measured_project(quick_runs):
    out = quick_runs[0]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("float_accuracy", "int8_accuracy", "sram_bytes", "flash_bytes", "macs",
                "seconds", "arch", "patches", "budget", "finetune"):
        assert key in summary
    report = json.loads((out / "project" / "report.json").read_text())
    assert summary["sram_bytes"] == report["arena_bytes"] <= 2048
    assert summary["flash_bytes"] == report["flash_bytes"] <= 8192
    assert summary["macs"] == report["macs"]
    assert summary["images"]["test"] >= 0.2 * 1797
    arch = Arch.load(out / "arch.json")
    assert arch.to_dict() == summary["arch"]
    search = json.loads((out / "search.json").read_text())
    # The deployed subnet is the re-rank's pick among the search's evaluated ones (not always
    # its best by fitness); the search's figures for it are the compiled project's.
    picked = [e for e in search["evolution"]["evaluated"] if e["arch"] == summary["arch"]]
    assert picked and picked[0]["sram_bytes"] == summary["sram_bytes"]
    assert summary["rerank"]["best"] == arch.summary()
    assert search["random"]["evaluations"] == search["evolution"]["evaluations"]
    for png in ("evolution.png", "pareto.png", "stage1.json"):
        assert (out / png).stat().st_size > 0
    assert (out / "evolution.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_int8_accuracy_is_the_generated_c_on_the_test_split(quick_runs):
    """Run the project's C again, independently of the pipeline, over the same test images."""
    from tinyengine.runtime import HostModel

    out = quick_runs[0]
    summary = json.loads((out / "summary.json").read_text())
    arch = Arch.load(out / "arch.json")
    test = split(load_digits(), 0.2, 0.15, seed=0).test
    x = resize_numpy(test.x, arch.resolution).transpose(0, 2, 3, 1)  # the engine is NHWC
    host = HostModel(out / "project")
    logits = np.stack([host.invoke([xi[None]])[0] for xi in x]).reshape(len(x), -1)
    assert np.mean(logits.argmax(1) == test.y) == summary["int8_accuracy"]


def test_same_seed_same_architecture_and_same_c(quick_runs):
    a, b = quick_runs
    assert (a / "arch.json").read_text() == (b / "arch.json").read_text()
    for name in ("model.c", "weights.c"):
        files = [next((d / "project").rglob(f"*{name}")) for d in (a, b)]
        assert files[0].read_bytes() == files[1].read_bytes()


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinynas: error: ") and "Traceback" not in err
    return err


def test_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "out"
    err = _error(capsys, ["pipeline", "--quick", "-q", "--dataset", str(tmp_path / "nope"),
                          "-o", str(out)])
    assert str(tmp_path / "nope") in err and "no such directory" in err
    assert not out.exists()


def test_budget_below_the_smallest_subnet_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "out"
    err = _error(capsys, ["pipeline", "--quick", "-q", "--sram", "200B", "--flash", "8KB",
                          "-o", str(out)])
    assert "smallest subnet" in err and "SRAM 200 B" in err
    assert not out.exists()


def test_negative_fitness_views_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "out"
    err = _error(capsys, ["pipeline", "--quick", "-q", "--fitness-views", "-1", "-o", str(out)])
    assert "fitness views -1" in err
    assert not out.exists()


def test_resuming_with_other_settings_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "sn"
    base = ["train", "-q", "--width", "0.25", "--resolutions", "8", "--largest-epochs", "1",
            "--epochs", "1", "-o", str(out)]
    assert main(base + ["--stop-after", "1"]) == 0
    capsys.readouterr()
    err = _error(capsys, base[:-2] + ["--lr", "0.05", "-o", str(out)])
    assert "other settings" in err and "lr" in err
    assert main(base) == 0  # the same settings resume
    log = json.loads((out / "train.json").read_text())
    assert log["resumed_from"] == 1 and len(log["history"]) == 2
    err = _error(capsys, ["train", "-q", "--width", "0.3", "-o", str(tmp_path / "w")])
    assert "--width 0.3 is not a width" in err


def _largest_val_accuracy(checkpoint: Path) -> float:
    net, cfg, _ = supernet_from_checkpoint(checkpoint)
    parts = split(load_digits(), seed=0)
    r = cfg.resolutions[0]
    return accuracy(inherited(net, net.largest(r), parts.train, 8), parts.val, r)


def test_two_process_ddp_matches_one_process(tmp_path):
    """torchrun with 2 processes (gloo): the replicas stay identical, and the supernet is as
    good as one process's with the same global batch."""
    args = ["train", "-q", "--width", "0.375", "--resolutions", "8", "--largest-epochs", "5",
            "--epochs", "1"]
    assert main(args + ["-o", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "tinynas.cli", *args, "-o",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    log = json.loads((tmp_path / "two" / "train.json").read_text())
    assert log["processes"] == 2 and log["replicas_identical"] is True
    one = _largest_val_accuracy(tmp_path / "one" / "supernet.pt")
    two = _largest_val_accuracy(tmp_path / "two" / "supernet.pt")
    assert one > 0.6 and two > 0.6, (one, two)
    assert abs(one - two) <= 0.05, (one, two)


def test_train_on_an_image_folder(tmp_path):
    """A user's ImageFolder: RGB images, 3 classes; the space takes the data's channels and
    classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / "data" / f"class{c}").mkdir(parents=True)
        for i in range(10):
            img = (rng.random((16, 16, 3)) * 80 + 60 * c).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / "data" / f"class{c}" / f"{i}.png")
    out = tmp_path / "sn"
    assert main(["train", "-q", "--dataset", str(tmp_path / "data"), "--width", "0.1",
                 "--resolutions", "32", "--largest-epochs", "1", "--epochs", "1", "--batch",
                 "8", "-o", str(out)]) == 0
    net, _, space = supernet_from_checkpoint(out / "supernet.pt")
    assert space.in_channels == 3 and space.num_classes == 3


def test_search_and_deploy_commands(quick_runs, tmp_path, capsys):
    """The pipeline's steps one at a time, from the quick run's supernet."""
    supernet = str(quick_runs[0] / "supernet.pt")
    assert main(["search", "-q", "--supernet", supernet, "--sram", "2KB", "--flash", "8KB",
                 "--population", "4", "--generations", "2", "-o", str(tmp_path / "s")]) == 0
    found = json.loads((tmp_path / "s" / "search.json").read_text())
    assert found["evolution"]["best"]["sram_bytes"] <= 2048
    assert main(["deploy", "-q", "--supernet", supernet, "--arch", str(tmp_path / "s" /
                 "arch.json"), "--finetune-epochs", "1", "--quant", "minmax", "-o",
                 str(tmp_path / "d")]) == 0
    deployed = json.loads((tmp_path / "d" / "deploy.json").read_text())
    assert deployed["calibration"] == "minmax" and 0 <= deployed["int8_accuracy"] <= 1
    assert (tmp_path / "d" / "project" / "report.json").exists()
    capsys.readouterr()
    err = _error(capsys, ["deploy", "-q", "--supernet", supernet, "--arch",
                          str(Path(__file__).parent.parent / "examples" / "mcunet" /
                              "mcunet-in3.json"), "-o", str(tmp_path / "bad")])
    assert "not a subnet" in err
    err = _error(capsys, ["search", "-q", "--supernet", str(tmp_path / "none.pt"), "--sram",
                          "2KB", "--flash", "8KB", "-o", str(tmp_path / "bad")])
    assert "no such checkpoint" in err


def test_the_deployed_random_search_network_is_saved(tmp_path):
    """deploy_random (the benchmarks' mode) keeps random search's deployed network beside the
    search's, so that its row can be trained again (benchmarks/distilled.py): the saved file
    is the network whose C was measured."""
    from tinynas.budget import Budget, check_budget
    from tinynas.flexarch import load_any
    from tinynas.pipeline import QUICK, PipelineConfig, run_pipeline

    result = run_pipeline(PipelineConfig(deploy_random=True, **QUICK), tmp_path, progress=False)
    deployed = result.summary["random_search_deployed"]
    arch = load_any(tmp_path / "random_arch.json")
    v = check_budget(arch, Budget(1 << 20, 1 << 20))
    assert (v.flash, v.macs) == (deployed["flash_bytes"], deployed["macs"])
    assert arch in {c.arch for c in result.baseline.evaluated}
