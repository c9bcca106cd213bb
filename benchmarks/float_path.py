"""The float-model road measured: PyTorch -> ONNX -> int8 -> generated C.

    .venv/bin/python benchmarks/float_path.py [--nets 10]

1. The digits CNN (examples/digits_cnn.py): float accuracy on the held-out split, int8 accuracy
   of the generated C, top-1 agreement.
2. Random MBConv networks (examples/mbconv_nets.py, 16x16x3 inputs, calibrated on 32 normal
   samples): |dequantised C output - float output| / (float output range), over 8 test inputs
   each, as a distribution; and C == reference on every input.
3. The ONNX QDQ export run by onnxruntime against our integer reference: fraction of identical
   int8 outputs and the largest difference, on the same networks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from digits_cnn import run as run_digits  # noqa: E402
from mbconv_nets import random_mbconv  # noqa: E402

from tinyengine.codegen import compile_graph  # noqa: E402
from tinyengine.convert import export_torch, quantize_onnx, source_model_info  # noqa: E402
from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model  # noqa: E402
from tinyengine.reference import run_reference  # noqa: E402
from tinyengine.runtime import HostModel  # noqa: E402
from tinyengine.source_forms import source_input_batches, source_outputs  # noqa: E402


def mbconv_errors(seed: int, tmp: Path) -> tuple[list[float], bool, float, int]:
    net = random_mbconv(seed)
    rng = np.random.default_rng(seed)
    calib = rng.normal(0, 1, (32, 3, 16, 16)).astype(np.float32)
    test = rng.normal(0, 1, (8, 3, 16, 16)).astype(np.float32)
    path = export_torch(net, torch.from_numpy(calib[:1]), tmp / f"mb{seed}.onnx")
    model, graph = quantize_onnx(path, calib)
    report = compile_graph(graph, tmp / f"p{seed}", source_model=source_model_info(model, graph))
    host = HostModel(tmp / f"p{seed}")
    (batch,), _ = source_input_batches(report, [test], ["test"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    errors, exact = [], True
    for x, b in zip(test, batch):
        c = host.invoke([b])[0]
        exact &= bool(np.array_equal(c, run_reference(graph, [b])[0]))
        want = session.run(None, {session.get_inputs()[0].name: x[None]})[0]
        (got,) = source_outputs(report, [c[None]], raw=False)
        errors.append(float(np.abs(got.reshape(want.shape) - want).max() / np.ptp(want)))
    agree = compare_with_onnxruntime(graph, model, qdq_model(graph, model), list(test[:, None]))
    return errors, exact, agree.identical, agree.max_abs_diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        d = run_digits(Path(tmp) / "digits")
        print("| digits CNN | float accuracy | int8 C accuracy | top-1 agreement | arena B | "
              "flash B |\n|---|---|---|---|---|---|")
        print(f"| held-out 25% (450 images) | {100 * d.float_accuracy:.2f}% | "
              f"{100 * d.int8_accuracy:.2f}% | {100 * d.agreement:.2f}% | {d.arena_bytes} | "
              f"{d.flash_bytes} |\n")
        all_errors, identical, worst = [], [], 0
        print("| MBConv net | C == reference | max error / output range | QDQ identical | "
              "QDQ max diff |\n|---|---|---|---|---|")
        for seed in range(args.nets):
            errors, exact, ident, diff = mbconv_errors(seed, Path(tmp))
            all_errors += errors
            identical.append(ident)
            worst = max(worst, diff)
            print(f"| seed {seed} | {'yes' if exact else 'NO'} | {max(errors):.4f} | "
                  f"{100 * ident:.1f}% | {diff} |")
        e = np.array(all_errors)
        print(f"\nerror / output range over {len(e)} outputs: median {np.median(e):.4f}, "
              f"p90 {np.percentile(e, 90):.4f}, max {e.max():.4f}; QDQ (onnxruntime) identical "
              f"int8 outputs {100 * np.mean(identical):.1f}% on average, max diff {worst} steps")


if __name__ == "__main__":
    main()
