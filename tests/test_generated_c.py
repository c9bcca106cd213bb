"""The generated project as a C user gets it: strict C99 builds with the project's own Makefile
and CMakeLists.txt, runs clean under AddressSanitizer and UBSan, and two models link into one
program thanks to the symbol prefix."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs

from .conftest import MODEL_FILES, MODELS, require
from .sanitized import check_sanitized_demo


@pytest.mark.parametrize("patch", ["off", "auto"])
@pytest.mark.parametrize("name", MODEL_FILES)
def test_sanitized_build_matches_reference(name, patch, shared_models, tmp_path):
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    graph = load_tflite(MODELS / name)
    project = tmp_path / "p"
    compile_graph(graph, project, prefix="m", patch=patch)
    rng = np.random.default_rng(5)
    check_sanitized_demo(project, "m", graph, [random_inputs(graph, rng) for _ in range(3)])


def test_cmake_build(shared_models, tmp_path):
    require(shutil.which("cmake") is not None, "cmake is needed")
    compile_graph(load_tflite(MODELS / "tiny_kws_ref_model.tflite"), tmp_path / "p", prefix="kws")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(tmp_path / "p"), "-B", str(build),
                    "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    assert (build / "kws_demo").is_file()


def test_two_models_link_into_one_program(shared_models, tmp_path):
    require(shutil.which("cc") is not None, "a C compiler is needed")
    a, b = tmp_path / "a", tmp_path / "b"
    compile_graph(load_tflite(MODELS / "tflm_hello_world_int8.tflite"), a, prefix="sine")
    compile_graph(load_tflite(MODELS / "tflm_micro_speech_quantized.tflite"), b, prefix="speech")
    kernels = tmp_path / "kernels"  # kernel files of the same name are identical: copy the union
    kernels.mkdir()
    for k in [*(a / "kernels").iterdir(), *(b / "kernels").iterdir()]:
        shutil.copyfile(k, kernels / k.name)
    main = tmp_path / "main.c"
    main.write_text('#include "sine_model.h"\n#include "speech_model.h"\n'
                    "int main(void) { sine_init(); speech_init();\n"
                    "  return sine_invoke() | speech_invoke(); }\n")
    srcs = [str(p) for d in (a, b) for p in sorted(d.glob("*_*.c"))]
    srcs += [str(p) for p in sorted(kernels.glob("*.c"))]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{a}", f"-I{b}",
                    f"-I{kernels}", "-o", str(tmp_path / "both"), str(main), *srcs], check=True)
    assert subprocess.run([str(tmp_path / "both")]).returncode == 0
