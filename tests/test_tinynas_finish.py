"""finish.finetune's distillation: the student follows the teacher's softened distribution."""

from __future__ import annotations

import pytest
import torch

from tinynas.baselines import vgg_cnn
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
