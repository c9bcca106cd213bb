"""Untrusted text and paths against the code generator (issue 17, items 4 and 6).

-o replaces a directory only when it is a project this tool wrote (its marker file), never the
working directory, a parent of it, the home directory or /; and every free text that reaches a
generated file (the model's path, tensor and op names, the symbol prefix, kernel file names) is
escaped or refused, so that a folder named `star *` or a tensor named `*/ int x; /*` can neither
break the -Werror build nor add C to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.codegen.project import _kernel_paths, check_emission
from tinyengine.errors import TinyEngineError
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, Tensor
from tinyengine.ops import Arg, ConstArray, OpEmission
from tinyengine.reference import run_reference

from .conftest import MODELS, require

HELLO = "tflm_hello_world_int8.tflite"
MARKER = ".tinyengine-project"
# Text that ends a C comment, opens one, defines a symbol, splices lines through a trigraph,
# reverses the display direction (gcc's -Wbidi-chars) and breaks a Makefile line.
HOSTILE = "a */ int te_injected_symbol = 42; /* b\n??/\nc\\\r\u202e$(shell false)\t#x"


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    root = str(Path(__file__).resolve().parent.parent)
    full_env = {**os.environ, "PYTHONPATH": root, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tinyengine.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env)


def assert_user_error(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyengine: error: "), run.stderr
    for w in words:
        assert w in lines[0], lines[0]


def _compile(out: Path, *extra: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return cli("compile", str(MODELS / HELLO), "-o", str(out), *extra, cwd=cwd, env=env)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _build_and_run(project: Path, prefix: str, graph: Graph) -> None:
    """The project's own Makefile (-Werror), then its demo on two inputs == the reference."""
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    subprocess.run(["make", "-s", "-C", str(project)], check=True, capture_output=True)
    nm = subprocess.run(["nm", str(project / f"lib{prefix}.a"), str(project / "main.o")],
                        check=True, capture_output=True, text=True).stdout
    assert "te_injected_symbol" not in nm
    rng = np.random.default_rng(3)
    cases = [random_inputs(graph, rng) for _ in range(2)]
    (project / "in.bin").write_bytes(b"".join(x.tobytes() for c in cases for x in c))
    subprocess.run([str(project / f"{prefix}_demo"), str(project / "in.bin"),
                    str(project / "out.bin")], check=True)
    want = b"".join(y.tobytes() for c in cases for y in run_reference(graph, c))
    assert (project / "out.bin").read_bytes() == want


# -- item 4: never delete what we did not write --------------------------------------------


def test_project_carries_the_marker_and_is_recompiled_in_place(shared_models, tmp_path):
    out = tmp_path / "p"
    assert _compile(out).returncode == 0
    lines = (out / MARKER).read_text().splitlines()
    assert lines[0].startswith("tinyengine project") and any("version" in ln for ln in lines)
    (out / "main.o").write_bytes(b"stale build output")  # ours to replace with the project
    run = _compile(out, "--prefix", "again")
    assert run.returncode == 0, run.stderr
    assert (out / "again_model.c").is_file() and not (out / "model_model.c").exists()
    assert not (out / "main.o").exists() and (out / MARKER).is_file()


def test_a_report_json_alone_does_not_make_a_project(shared_models, tmp_path):
    (tmp_path / "report.json").write_text('{"another": "tool"}')
    (tmp_path / "mine.txt").write_text("precious")
    before = _tree(tmp_path)
    assert_user_error(_compile(tmp_path), str(tmp_path), "not a tinyengine project")
    assert _tree(tmp_path) == before


def test_a_foreign_marker_file_is_not_ours(shared_models, tmp_path):
    (tmp_path / MARKER).write_text("something else entirely\n")
    (tmp_path / "mine.txt").write_text("precious")
    before = _tree(tmp_path)
    assert_user_error(_compile(tmp_path), "not a tinyengine project")
    assert _tree(tmp_path) == before


def test_a_project_from_before_the_marker_is_refused_not_deleted(shared_models, tmp_path):
    """Projects written before the marker existed have only report.json, which any tool can
    write: they are refused with what to do, never guessed to be ours."""
    out = tmp_path / "old"
    assert _compile(out).returncode == 0
    (out / MARKER).unlink()
    before = _tree(out)
    assert_user_error(_compile(out), str(out), MARKER, "delete")
    assert _tree(out) == before


def test_working_directory_and_its_parents_are_never_replaced(shared_models, tmp_path):
    project = tmp_path / "p"
    assert _compile(project).returncode == 0  # a real project: the marker would allow it
    (project / "notes.txt").write_text("the user's own notes")
    sub = project / "sub"
    sub.mkdir()
    before = _tree(tmp_path)
    assert_user_error(_compile(Path("."), cwd=project), "working directory")
    assert_user_error(_compile(Path(".."), cwd=sub), "working directory")
    assert_user_error(_compile(project, cwd=sub), "working directory")
    assert _tree(tmp_path) == before


def test_home_and_root_are_never_replaced(shared_models, tmp_path):
    home = tmp_path / "home"
    assert _compile(home).returncode == 0
    before = _tree(tmp_path)
    assert_user_error(_compile(home, env={"HOME": str(home)}), "home directory")
    assert_user_error(_compile(home / "..", env={"HOME": str(home)}), "home directory")
    assert_user_error(_compile(Path("/"), cwd=tmp_path), "/")
    assert _tree(tmp_path) == before


def test_over_long_output_path_is_one_line(shared_models, tmp_path):
    assert_user_error(_compile(tmp_path / ("x" * 300)), "cannot write")
    assert list(tmp_path.iterdir()) == []
    # A name near the limit is fine: the temporary sibling must not be longer than it.
    run = _compile(tmp_path / ("y" * 250))
    assert run.returncode == 0, run.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["y" * 250]


# -- item 6: text that reaches generated files ---------------------------------------------


@pytest.mark.parametrize("prefix", ["model\n", "a\nb", "my model", "1model", "int", "while",
                                    "_Model", "", "m$(x)", "m-1", "x" * 33])
def test_bad_prefix_is_one_line_and_nothing_written(shared_models, tmp_path, prefix):
    out = tmp_path / "p"
    assert_user_error(_compile(out, "--prefix", prefix), "prefix")
    assert not out.exists()


def test_good_prefixes_are_accepted(tmp_path):
    graph = load_tflite(MODELS / HELLO)
    for prefix in ("m", "kws2", "My_Model_3", "x" * 32):
        compile_graph(graph, tmp_path / prefix[:8], prefix=prefix)


def test_model_in_a_folder_named_star_builds(shared_models, tmp_path):
    """`star */ evil/m.tflite` puts `*/` into every comment that names the source."""
    folder = tmp_path / "star *" / " evil"
    folder.mkdir(parents=True)
    shutil.copyfile(MODELS / HELLO, folder / "m.tflite")
    out = tmp_path / "p"
    run = cli("compile", str(folder / "m.tflite"), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "report.json").read_text())["source"] == str(folder / "m.tflite")
    _build_and_run(out, "model", load_tflite(MODELS / HELLO))


def test_crafted_path_defines_no_symbol(shared_models, tmp_path):
    """Path components cannot hold '/', but `a *` + `/` + `int x;` + `/` + `*` + `/` can:
    a */int te_injected_symbol = 42;/*/m.tflite."""
    folder = tmp_path / "a *" / "int te_injected_symbol = 42;" / "*"
    folder.mkdir(parents=True)
    shutil.copyfile(MODELS / HELLO, folder / "m.tflite")
    out = tmp_path / "p"
    run = cli("compile", str(folder / "m.tflite"), "-o", str(out))
    assert run.returncode == 0, run.stderr
    _build_and_run(out, "model", load_tflite(MODELS / HELLO))


def _renamed(graph: Graph, name) -> Graph:
    """`graph` with every tensor and op renamed by name(old)."""
    tensors = {name(n): Tensor(name(n), t.shape, t.dtype, t.quant, t.data, t.const)
               for n, t in graph.tensors.items()}
    ops = [Op(name(op.name), op.kind, [name(n) if n else "" for n in op.inputs],
              [name(n) for n in op.outputs], dict(op.attrs)) for op in graph.ops]
    return Graph(tensors, ops, [name(n) for n in graph.inputs],
                 [name(n) for n in graph.outputs], name(graph.name))


def test_hostile_tensor_and_op_names_build_and_run(shared_models, tmp_path):
    graph = _renamed(load_tflite(MODELS / HELLO), lambda n: f"{n} {HOSTILE}")
    out = tmp_path / "p"
    report = compile_graph(graph, out, prefix="m", source=f"/models/{HOSTILE}/x.tflite")
    assert report["inputs"][0]["name"] == graph.inputs[0]  # the report keeps the true names
    for f in [*out.glob("*.[ch]"), out / "Makefile", out / "CMakeLists.txt"]:
        text = f.read_text()
        assert "te_injected_symbol = 42; /*" not in text and "\u202e" not in text, f.name
    _build_and_run(out, "m", graph)


def test_hostile_names_build_with_cmake(shared_models, tmp_path):
    require(shutil.which("cmake") is not None, "cmake is needed")
    graph = _renamed(load_tflite(MODELS / HELLO), lambda n: f"{n} {HOSTILE}")
    compile_graph(graph, tmp_path / "p", prefix="m", source=f"/x/{HOSTILE}/y.tflite")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(tmp_path / "p"), "-B", str(build),
                    "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    assert (build / "m_demo").is_file()


@pytest.mark.parametrize("name", ["user op.c", "user$(shell x).c", "a\nb.c", "quote\".h",
                                  "semi;colon.c", "-flag.c"])
def test_kernel_file_names_that_cannot_go_into_a_makefile_are_refused(tmp_path, name):
    src = tmp_path / name
    src.write_text("/* a user-defined op's kernel */\n")
    with pytest.raises(TinyEngineError, match="kernel file"):
        _kernel_paths([SimpleNamespace(sources=[str(src)])])  # type: ignore[list-item]


def test_plain_kernel_file_names_are_accepted(tmp_path):
    src = tmp_path / "user_square-v2.c"
    src.write_text("/* a user-defined op's kernel */\n")
    paths = _kernel_paths([SimpleNamespace(sources=["te_common.h", str(src)])])  # type: ignore
    assert sorted(paths) == ["te_common.h", "user_square-v2.c"]


def _emission(**changes) -> OpEmission:
    em = OpEmission(kernel="te_user_s8", params_type="te_user_params_t",
                    params={"size": 4, "rq": ["@mult", "TE_ACT_NONE", 0]},
                    args=[Arg("tensor", "x", "const int8_t"), Arg("tensor", "y", "int8_t")],
                    consts=[ConstArray("mult", "int32_t", np.zeros(4, np.int32))])
    for k, v in changes.items():
        setattr(em, k, v)
    return em


@pytest.mark.parametrize("changes", [
    {"kernel": "te_user_s8(0); int evil"}, {"params_type": "struct x { int a; }"},
    {"params": {"size": "4; int evil"}}, {"params": {"a b": 1}},
    {"params": {"rq": ["@mult */", 0]}},
    {"consts": [ConstArray("w[1]", "int8_t", np.zeros(1, np.int8))]},
    {"consts": [ConstArray("w", "int8_t *", np.zeros(1, np.int8))]},
    {"args": [Arg("tensor", "x", "const int8_t *)0; evil(")]}])
def test_emissions_that_are_not_c_names_are_refused(changes):
    """A user-defined op's emit hook returns text that goes into the C source unquoted."""
    op = Op("user_0", "USER", ["x"], ["y"])
    check_emission(op, _emission())  # the well-formed one passes
    with pytest.raises(TinyEngineError, match="user_0"):
        check_emission(op, _emission(**changes))
