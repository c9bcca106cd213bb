"""Distillation: finish.finetune follows a teacher; tinynas.distill trains, keeps and reuses
teachers; the pipeline's --distill."""

from __future__ import annotations

import json

import pytest
import torch

from tinynas.baselines import vgg_cnn
from tinynas.cli import main
from tinynas.distill import Ensemble, teacher_arch, teachers
from tinynas.errors import TinyNASError
from tinynas.finish import finetune
from tinynas.flexnet import FlexNet

from .conftest import digits_slice

torch.set_num_threads(1)


def _threes(x: torch.Tensor) -> torch.Tensor:
    """A teacher sure of class 3 whatever the input (the digits' labels are balanced)."""
    logits = torch.zeros(x.shape[0], 10)
    logits[:, 3] = 10.0
    return logits


def _share_of_threes(teacher, kd: float, temperature: float) -> float:
    train, _ = digits_slice(64, 8)
    arch = vgg_cnn(4, 8, 1, 10, 2)
    torch.manual_seed(0)
    net = finetune(FlexNet(arch), arch, train, 4, 1e-2, seed=0, teacher=teacher, kd=kd,
                   temperature=temperature)
    with torch.no_grad():
        return float((net(torch.from_numpy(train.x)).argmax(1) == 3).float().mean())


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_a_pure_distillation_predicts_what_the_teacher_says(temperature):
    assert _share_of_threes(_threes, 1.0, temperature) == 1.0


def test_without_the_teacher_the_labels_rule():
    assert _share_of_threes(None, 0.5, 4.0) < 0.5


def test_teachers_are_trained_once_and_named_by_their_recipe(tmp_path):
    train, _ = digits_slice(64, 8)
    first = teachers(train, train, 2, 2, 1, 1e-2, tmp_path, workers=1)
    files = sorted(tmp_path.iterdir())
    names = [f.name.split("-") for f in files]
    assert [n[0] for n in names] == [train.name] * 2
    assert [n[2:] for n in names] == [["w2", "e1", "lr0.01", f"s{s}.pt"] for s in (0, 1)]
    other, _ = digits_slice(32, 8)  # the same name, other examples: its own teachers
    teachers(other, other, 1, 2, 1, 1e-2, tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    stamps = [f.stat().st_mtime_ns for f in files]
    again = teachers(train, train, 2, 2, 1, 1e-2, tmp_path, workers=1)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # reused, not trained again
    x = torch.from_numpy(train.x[:16])
    assert torch.equal(first(x), again(x))
    assert torch.equal(first(x), (first.nets[0](x) + first.nets[1](x)) / 2)


def test_a_teacher_file_of_another_network_is_a_clear_error(tmp_path):
    train, _ = digits_slice(64, 8)
    teachers(train, train, 1, 2, 1, 1e-2, tmp_path)
    (path,) = tmp_path.iterdir()
    with pytest.raises(TinyNASError, match=f"{path}: not the weights of a teacher"):
        Ensemble(teacher_arch(train, 3), [path])


def test_the_pipeline_distils_the_winner_and_reuses_its_teachers(tmp_path):
    out, again = tmp_path / "a", tmp_path / "b"
    args = ["pipeline", "--quick", "-q", "--distill", "1", "--teacher-width", "2"]
    assert main([*args, "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finetune"]["distilled"] is True
    (teacher,) = (out / "teachers").iterdir()
    stamp = teacher.stat().st_mtime_ns
    assert main([*args, "--teachers", str(out / "teachers"), "-o", str(again)]) == 0
    assert teacher.stat().st_mtime_ns == stamp and not (again / "teachers").exists()
    other = json.loads((again / "summary.json").read_text())
    assert other["int8_accuracy"] == summary["int8_accuracy"]
    assert other["finetune"] == summary["finetune"]


@pytest.mark.parametrize("bad", [["--distill", "-1"], ["--distill", "1", "--temperature", "0"],
                                 ["--distill", "1", "--distill-alpha", "1.5"]])
def test_bad_distillation_settings_are_one_line_and_exit_2(bad, tmp_path, capsys):
    assert main(["pipeline", "--quick", "-q", *bad, "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinynas: error: distillation") and "\n" not in err
    assert not (tmp_path / "x").exists()
