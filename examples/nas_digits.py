"""Walkthrough: search a network for a 2 KB / 8 KB microcontroller on digits, look at the
search, build the generated C for the host and run it on one test image.

    .venv/bin/python examples/nas_digits.py [-o out/nas_digits] [--fast]

--fast cuts epochs and evaluations (about two minutes, lower accuracy); without it this is
the README's main job (about 15 minutes on 2 cores). Steps:
1. `run_pipeline`: stage one, supernet, evolution, fine-tune, int8 C (what `tinynas pipeline`
   runs);
2. the plots: DIR/evolution.png (best val accuracy against subnets evaluated, evolution vs
   random search) and DIR/pareto.png (accuracy against peak SRAM of every evaluated subnet);
3. `make -C DIR/project`: the same sources as a host program (the cffi runtime builds them
   too);
4. one test image through the C, from Python: the int8 logits and the predicted digit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    from tinyengine.runtime import HostModel
    from tinynas.data import load_digits, resize_numpy, split
    from tinynas.pipeline import PipelineConfig, run_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("out/nas_digits"))
    ap.add_argument("--fast", action="store_true", help="fewer epochs and evaluations")
    ap.add_argument("--quick", action="store_true", help="a smoke test: a few seconds of each")
    args = ap.parse_args(argv)

    cfg = PipelineConfig(sram=2048, flash=8192)
    if args.fast:
        cfg = replace(cfg, largest_epochs=10, epochs=15, population=16, generations=5,
                      finetune_epochs=5)
    if args.quick:
        cfg = replace(cfg, largest_epochs=1, epochs=1, population=4, generations=2,
                      finetune_epochs=1, stage1_samples=40, calib_images=32)
    result = run_pipeline(cfg, args.output, progress=not args.quick)
    s = result.summary
    print(f"\n1. searched: {json.dumps(s['arch']['stages'])[:100]}...\n"
          f"   int8 accuracy of the C on {s['images']['test']} test images: "
          f"{100 * s['int8_accuracy']:.2f}% (float {100 * s['float_accuracy']:.2f}%), "
          f"SRAM {s['sram_bytes']} B, flash {s['flash_bytes']} B")
    print(f"2. plots: {args.output / 'evolution.png'}, {args.output / 'pareto.png'}")

    project = args.output / "project"
    if shutil.which("make") and shutil.which("cc"):
        subprocess.run(["make", "-s", "-C", str(project)], check=True)
        print(f"3. built the host program in {project} with make")
    else:
        print("3. (no make/cc here: skipped the standalone build)")

    test = split(load_digits(), cfg.test, cfg.val, cfg.split_seed).test
    r = s["arch"]["resolution"]
    image = resize_numpy(test.x[:1], r).transpose(0, 2, 3, 1)  # NCHW -> the engine's NHWC
    logits = HostModel(project).invoke([image])[0].reshape(-1)
    print(f"4. test image 0 (label {test.y[0]}): C logits {np.round(logits, 2).tolist()} -> "
          f"predicted {int(logits.argmax())}")


if __name__ == "__main__":
    main()
