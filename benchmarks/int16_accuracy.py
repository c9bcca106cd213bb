"""int8, 16x8 and mixed activations measured on two small trained models (issue 13, point 4).

    .venv/bin/python benchmarks/int16_accuracy.py [--epochs-digits 30] [--epochs-seq 15]

1. The digits CNN (examples/digits_cnn.py: 8x8 images, conv / depthwise / pointwise / max pool /
   strided conv / linear), trained on scikit-learn's digits, calibrated on 200 training images,
   tested on the 450 held-out ones.
2. A 1-D convolutional classifier over a sequence (written here: three k x 1 convolutions over a
   256-sample signal, global average pooling, linear), trained on synthetic tones: which of four
   frequency bands a noisy sinusoid is in, with amplitudes log-uniform over 60 dB, as sensor and
   audio signals have. A quiet signal is a few int8 steps of the loudest: the case 16-bit
   activations are for. Calibrated on 256 signals, tested on 1000 others.

For each activation type the model is quantised (minmax), compiled to C and run on the host;
the table gives the generated C's accuracy (overall and on the quietest quarter of the test
inputs, by input power), its top-1 agreement with the float model, the output's signal-to-noise
ratio against the float model (dB; the error-to-signal power ratio per test input, averaged, as
the mixed search measures it), the ops that run on int16 (of the graph's ops, the int8 <-> int16
QUANTIZE ops aside), those QUANTIZE ops, the arena and flash the C needs, and the time to
quantise (the mixed search included) and compile. Mixed runs twice: with its default budget, and
capped at half of its candidate layers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from digits_cnn import digits_split, small_cnn, train  # noqa: E402

from tinyengine.convert import compile_torch  # noqa: E402
from tinyengine.quantize.mixed import MixedOptions  # noqa: E402
from tinyengine.runtime import HostModel  # noqa: E402
from tinyengine.source_forms import source_input_batches, source_outputs  # noqa: E402

# (label, activations, mixed options): mixed with its default budget, and capped at half the
# layers to show what the cap costs where every layer needs 16 bits.
MODES = (("int8", "int8", None), ("int16", "int16", None), ("mixed", "mixed", MixedOptions()),
         ("mixed, <= 50% layers", "mixed", MixedOptions(max_fraction=0.5)))
SEQ_LEN = 256
BANDS = ((0.02, 0.05), (0.06, 0.09), (0.10, 0.14), (0.16, 0.22))  # cycles per sample


@dataclass
class Row:
    model: str
    mode: str
    accuracy: float
    agreement: float  # top-1 agreement with the float model
    snr_db: float  # -10 log10 of the error-to-signal power ratio, per sample, averaged
    quiet: float  # accuracy on the quietest quarter of the test inputs
    int16_ops: int
    ops: int
    requantize: int
    arena: int
    flash: int
    seconds: float  # quantise + compile


def seq_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n signals (n, 1, SEQ_LEN, 1) and their band labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(BANDS), n)
    lo, hi = np.array(BANDS).T
    freq = rng.uniform(lo[labels], hi[labels])
    amp = 10.0 ** rng.uniform(-3, 0, n)  # 60 dB of loudness
    t = np.arange(SEQ_LEN)
    x = amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    x += amp[:, None] * rng.normal(0, 0.05, (n, SEQ_LEN))  # noise relative to the signal
    return x[:, None, :, None].astype(np.float32), labels


def seq_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, (9, 1), stride=(2, 1), padding=(4, 0)), nn.ReLU(),
        nn.Conv2d(8, 16, (9, 1), stride=(2, 1), padding=(4, 0)), nn.ReLU(),
        nn.Conv2d(16, 16, (5, 1), stride=(2, 1), padding=(2, 0)), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, len(BANDS)))


def evaluate(name: str, model: nn.Module, calib: np.ndarray, x: np.ndarray, y: np.ndarray,
             tmp: Path) -> list[Row]:
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    rows = []
    power = np.mean(x.reshape(len(x), -1).astype(np.float64) ** 2, axis=1)
    quiet = power <= np.quantile(power, 0.25)
    for k, (label, mode, options) in enumerate(MODES):
        start = time.perf_counter()
        out = tmp / f"{name}_{k}"
        report = compile_torch(model, torch.from_numpy(x[:1]), calib, out, activations=mode,
                               mixed=options, prefix=name)
        seconds = time.perf_counter() - start
        host = HostModel(out)
        (batch,), _ = source_input_batches(report, [x], ["x"])
        got = np.stack([host.invoke([b])[0] for b in batch])
        (got,) = source_outputs(report, [got], raw=False)
        got = got.reshape(want.shape)
        act = report["source_model"]["activations"]
        w64 = want.astype(np.float64)
        nsr = np.sum((got - w64) ** 2, axis=1) / np.maximum(np.sum(w64 ** 2, axis=1), 1e-30)
        right = got.argmax(1) == y
        rows.append(Row(name, label, float(np.mean(right)),
                        float(np.mean(got.argmax(1) == want.argmax(1))),
                        float(-10 * np.log10(np.mean(nsr))), float(np.mean(right[quiet])),
                        len(act["int16_ops"]), act["ops"], len(act["requantize_ops"]),
                        report["arena_bytes"], report["flash_bytes"], seconds))
        if mode == "mixed":
            print(f"  {name} {label}: int16 in {', '.join(act['int16_ops']) or 'nothing'}; "
                  f"output error int8 {act['mixed']['output_error']['int8']:.3g}, int16 "
                  f"{act['mixed']['output_error']['int16']:.3g}, mixed "
                  f"{act['mixed']['output_error']['mixed']:.3g} (budget "
                  f"{act['mixed']['output_error']['budget']:.3g})", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs-digits", type=int, default=30)
    ap.add_argument("--epochs-seq", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows: list[Row] = []
    floats: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        x_train, y_train, x_test, y_test = digits_split(0)
        torch.manual_seed(0)
        digits = train(small_cnn(), x_train, y_train, epochs=args.epochs_digits, seed=0)
        with torch.no_grad():
            floats["digits"] = float(np.mean(
                digits(torch.from_numpy(x_test)).argmax(1).numpy() == y_test))
        rows += evaluate("digits", digits, x_train[:200], x_test, y_test, Path(tmp))

        sx, sy = seq_data(4000, 1)
        tx, ty = seq_data(1000, 2)
        torch.manual_seed(0)
        seq = train(seq_model(), sx, sy, epochs=args.epochs_seq, seed=0)
        with torch.no_grad():
            floats["seq1d"] = float(np.mean(seq(torch.from_numpy(tx)).argmax(1).numpy() == ty))
        rows += evaluate("seq1d", seq, sx[:256], tx, ty, Path(tmp))

    print()
    print("| model | float acc. | activations | C acc. | quietest 25% | agreement | output SNR "
          "| int16 ops | requantize ops | arena B | flash B | quantise + compile |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.model} | {100 * floats[r.model]:.2f}% | {r.mode} | {100 * r.accuracy:.2f}% | "
              f"{100 * r.quiet:.2f}% | {100 * r.agreement:.2f}% | {r.snr_db:.1f} dB | "
              f"{r.int16_ops} of {r.ops} | {r.requantize} | {r.arena} | {r.flash} | "
              f"{r.seconds:.1f} s |")


if __name__ == "__main__":
    main()
