"""MCUNet's released models as architecture descriptions, reconstructed from public material.

MCUNet publishes its models' configurations only as downloads (hanlab18.mit.edu JSON files,
which this project cannot fetch). The descriptions below were rebuilt from:
- mcunet-in0..in4: a public transcription of those JSON files into torchvision-style settings
  (per block: expand ratio, channels, stride, kernel); mcunet-in3 agrees block for block with a
  second, independent transcription (MCUNet's tiny-training code, `MCUNet` with
  block_configs). Every one reproduces the README's MACs and parameters.
- mcunet-vww1: the layer list of mit-han-lab/tinyengine's assets/vww.tflite (an 80x80 VWW model
  whose MACs and parameters are the README's mcunet-vww1 figures).
- mcunet-vww2: the layer list of mit-han-lab/tinyengine's generated code for its VWW demo
  (experimental/vww/.../genModel.c, 144x144; MACs and parameters are the README's mcunet-vww2).
- mbv2-w0.35: MCUNet's MobileNetV2 class (mcunet/tinynas/nn/networks/mobilenet_v2.py) at width
  0.35 with the 1x1 feature-mix layer scaled too (448 channels): 23.5M MACs, 0.75M parameters,
  as the README says; keeping 1280 mix channels would give 1.68M.
- proxyless-w0.3: ProxylessNAS-mobile (stage depths 2,4,4,4,4,1; the block kernels and expand
  ratios of pytorchcv's transcription, whose full-width network has the reference 4,080,512
  parameters and 320M MACs) scaled to width 0.3 with make_divisible and a 384-channel mix layer.
  APPROXIMATE: it gives 36.8M MACs / 0.71M parameters against the README's 38.3M / 0.75M; the
  exact width rule MCUNet used is not public.
Not reconstructed: mcunet-vww0 (64x64, 6.0M MACs): no public layer list was found.

README figures (MACs, parameters) are kept in `extra["readme"]`, ours (the engine's MACs, the
PyTorch subnet's parameters with BatchNorm's scale and shift) in `extra["computed"]`.
examples/mcunet/*.json are these descriptions; regenerate them with
    python -m tinynas.zoo examples/mcunet
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from .arch import Arch, Block, Stage

# (channels, stride, ((kernel, expand), ...)) per stage
_StageSpec = tuple[int, int, tuple[tuple[int, int], ...]]


def _arch(name: str, r: int, w: float, stem: int, first: int, stages: list[_StageSpec],
          classes: int, readme: tuple[float, float], head: int = 0, note: str = "") -> Arch:
    extra: dict = {"readme": {"macs_m": readme[0], "params_m": readme[1]}}
    if note:
        extra["note"] = note
    return Arch(resolution=r, stem_channels=stem, first_block_channels=first,
                stages=tuple(Stage(c, s, tuple(Block(k, e) for k, e in blocks))
                             for c, s, blocks in stages),
                in_channels=3, num_classes=classes, head_channels=head, width_mult=w, name=name,
                extra=extra)


MODELS: dict[str, Arch] = {m.name: m for m in [
    _arch("mcunet-in0", 48, 0.6, 24, 16, [
        (16, 2, ((5, 4), (3, 3), (3, 4))), (24, 2, ((7, 5), (5, 4), (5, 5))),
        (48, 2, ((7, 5), (5, 4))), (56, 1, ((3, 5), (5, 4), (3, 5))),
        (112, 2, ((3, 6), (5, 4))), (192, 1, ((3, 6),))], 1000, (6.4, 0.75)),
    _arch("mcunet-in1", 96, 0.5, 16, 8, [
        (16, 2, ((3, 4), (3, 3))), (24, 2, ((7, 3), (3, 5))), (40, 2, ((3, 5), (7, 4))),
        (48, 1, ((5, 4), (3, 3), (3, 4))), (96, 2, ((7, 5), (5, 4), (5, 4))),
        (160, 1, ((3, 6),))], 1000, (12.8, 0.64)),
    _arch("mcunet-in2", 160, 0.5, 16, 8, [
        (16, 2, ((5, 3), (7, 6), (3, 5), (5, 5))), (24, 2, ((3, 5), (7, 6), (5, 6))),
        (40, 2, ((7, 4), (5, 5))), (48, 1, ((3, 5), (5, 5), (3, 4))),
        (96, 2, ((5, 6), (5, 4), (5, 3), (3, 4))), (160, 1, ((5, 5),))], 1000, (67.3, 0.73)),
    _arch("mcunet-in3", 176, 0.5, 16, 8, [
        (16, 2, ((7, 3), (3, 5), (7, 5), (5, 4))), (24, 2, ((5, 5), (5, 5), (5, 5))),
        (40, 2, ((3, 5), (7, 6), (5, 4))), (48, 1, ((5, 5), (7, 5), (3, 5))),
        (96, 2, ((3, 6), (7, 5), (3, 4))), (160, 1, ((7, 5),))], 1000, (81.8, 0.74)),
    _arch("mcunet-in4", 160, 1.0, 32, 16, [
        (24, 2, ((7, 3), (3, 5), (5, 4))), (40, 2, ((7, 5), (3, 4), (7, 4))),
        (80, 2, ((7, 3), (3, 3), (7, 3))), (96, 1, ((3, 4), (5, 3), (5, 3))),
        (192, 2, ((7, 4), (7, 3), (5, 3))), (320, 1, ((5, 4),))], 1000, (125.9, 1.73)),
    _arch("mcunet-vww1", 80, 0.5, 16, 8, [
        (16, 2, ((3, 6), (3, 3), (3, 3))), (24, 2, ((7, 3), (3, 6), (5, 5))),
        (40, 2, ((7, 6), (7, 6))), (48, 1, ((3, 6), (3, 4))),
        (96, 2, ((5, 5), (3, 5), (3, 4))), (160, 1, ((7, 3),))], 2, (11.6, 0.43)),
    _arch("mcunet-vww2", 144, 0.5, 16, 8, [
        (16, 2, ((3, 3), (3, 5), (5, 6), (3, 3))), (24, 2, ((7, 5), (5, 4), (3, 4), (7, 6))),
        (40, 2, ((3, 6), (7, 6), (5, 4), (3, 5))), (48, 1, ((5, 5), (5, 3), (3, 4), (5, 3))),
        (96, 2, ((3, 4), (5, 5), (5, 4), (3, 4))), (160, 1, ((3, 5),))], 2, (55.8, 0.64)),
    _arch("mbv2-w0.35", 144, 0.35, 16, 8, [
        (8, 2, ((3, 6),) * 2), (16, 2, ((3, 6),) * 3), (24, 2, ((3, 6),) * 4),
        (32, 1, ((3, 6),) * 3), (56, 2, ((3, 6),) * 3), (112, 1, ((3, 6),))], 1000,
        (23.5, 0.75), head=448),
    _arch("proxyless-w0.3", 176, 0.3, 16, 8, [
        (16, 2, ((5, 3), (3, 3))), (16, 2, ((7, 3), (3, 3), (5, 3), (5, 3))),
        (24, 2, ((7, 6), (5, 3), (5, 3), (5, 3))), (32, 1, ((5, 6), (5, 3), (5, 3), (5, 3))),
        (56, 2, ((7, 6), (7, 6), (7, 3), (7, 3))), (96, 1, ((7, 6),))], 1000, (38.3, 0.75),
        head=384, note="approximate: MCUNet's exact width rule for this baseline is not public"),
]}

EXACT = [n for n, a in MODELS.items() if "note" not in a.extra]


def with_computed(arch: Arch) -> Arch:
    """The description with our MACs (the engine's count) and parameter count in `extra`."""
    from .resources import estimate_arch
    from .subnet import SubNet, count_params

    computed = {"macs": estimate_arch(arch).macs, "params": count_params(SubNet(arch))}
    return replace(arch, extra={**arch.extra, "computed": computed})


def write_examples(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, arch in MODELS.items():
        path = out / f"{name}.json"
        with_computed(arch).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_examples(sys.argv[1] if len(sys.argv) > 1 else "examples/mcunet"):
        print(p)
