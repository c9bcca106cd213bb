"""A non-editable install finds csrc/ and codegen_templates/: build the wheel, install it into a
bare directory and compile a model from there."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from .conftest import ROOT, require


def test_wheel_carries_kernels_and_templates_and_works(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    require(run.returncode == 0, f"pip wheel failed: {run.stderr[-500:]}")
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "csrc/te_conv.c" in names and "csrc/te_common.h" in names
    assert "codegen_templates/model.c.j2" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                    "--target", str(site), str(wheel)], check=True, capture_output=True)
    code = ("import tinyengine.resources as r, sys; from tinyengine.demo import demo_graph;"
            "from tinyengine.codegen import compile_graph;"
            f"assert str(r.CSRC).startswith({str(site)!r}), r.CSRC;"
            f"compile_graph(demo_graph(), {str(tmp_path / 'proj')!r})")
    env = dict(os.environ, PYTHONPATH=str(site))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)
    assert (tmp_path / "proj" / "kernels" / "te_conv.c").is_file()
