"""Board projects: the timing firmware (cycles per invoke over semihosting or a UART) and the
manifests other build systems read (Zephyr module, PlatformIO library.json, Arduino library).

Zephyr, PlatformIO and the Arduino IDE are not installable here, so their manifests are parsed
and checked against the files the project really holds (required keys, every named file exists,
the sources they build are exactly the model's), and built the way those tools would where a
host tool can stand in: the Arduino src/ folder with only itself on the include path, the Zephyr
CMakeLists.txt with its zephyr_* functions stubbed by plain CMake.

The timing firmware runs under QEMU 7.2, which models no DWT (its registers read as zero): the
firmware notices that CYCCNT does not move and falls back to SysTick, which QEMU drives from
virtual time; with -icount shift=0 (run-timing) that time is one nanosecond per instruction, so
the counts repeat exactly. They count the emulator's time, not the board's.

Needs arm-none-eabi-gcc and qemu-system-arm for the firmware tests, cc and cmake for the build
stand-ins: skipped with the reason where missing, a failure under CI=true.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite

from .conftest import MODELS, require

HELLO = "tflm_hello_world_int8.tflite"
KWS = "tiny_kws_ref_model.tflite"
# Arduino library.properties: the fields the specification (1.5 library format) requires, and
# its categories.
ARDUINO_REQUIRED = ("name", "version", "author", "maintainer", "sentence", "paragraph",
                    "category", "url", "architectures")
ARDUINO_CATEGORIES = ("Display", "Communication", "Signal Input/Output", "Sensors",
                      "Device Control", "Timing", "Data Storage", "Data Processing", "Other")


def _project(tmp_path: Path, model: str = KWS, board: str | None = None) -> Path:
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    out = tmp_path / (board or "host")
    compile_graph(load_tflite(MODELS / model), out, prefix="m", target=board)
    return out


def _model_sources(project: Path) -> set[str]:
    """What a build of the model needs, from the project's own files (not the manifests)."""
    return {"m_model.c", "m_weights.c",
            *(f"kernels/{p.name}" for p in (project / "kernels").glob("*.c"))}


def _properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not a key=value line: {line!r}"
            out[key.strip()] = value.strip()
    return out


def _pio_filter(root: Path, src_dir: str, patterns: list[str]) -> set[str]:
    """PlatformIO's srcFilter: +<glob> / -<glob> relative to srcDir, applied in order."""
    base = root / src_dir
    files = [str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()]
    chosen: set[str] = set()
    for pat in patterns:
        m = re.fullmatch(r"([+-])<(.+)>", pat)
        assert m, f"not a srcFilter pattern: {pat!r}"
        hit = {f for f in files if fnmatch.fnmatch(f, m.group(2))}
        chosen = chosen | hit if m.group(1) == "+" else chosen - hit
    return chosen


# --- manifests ---------------------------------------------------------------------------------

def test_zephyr_module_names_the_model_sources(tmp_path):
    project = _project(tmp_path)
    module = yaml.safe_load((project / "zephyr" / "module.yml").read_text())
    assert module["name"] == "tinyengine_m"
    assert (project / module["build"]["cmake"] / "CMakeLists.txt").is_file()
    kconfig = (project / module["build"]["kconfig"]).read_text()
    symbol = re.search(r"^config (\w+)$", kconfig, re.M)
    assert symbol and re.search(r"^\tbool ", kconfig, re.M)
    cmake = (project / "zephyr" / "CMakeLists.txt").read_text()
    assert f"if(CONFIG_{symbol.group(1)})" in cmake
    named = re.findall(r"\$\{TE_M_DIR\}/(\S+\.c)", cmake)
    assert set(named) == _model_sources(project) and len(named) == len(set(named))
    assert all((project / n).is_file() for n in named)


def test_platformio_library_json_builds_only_the_model(tmp_path):
    project = _project(tmp_path)
    lib = json.loads((project / "library.json").read_text())
    assert lib["name"] == "tinyengine-m" and re.fullmatch(r"\d+\.\d+\.\d+", lib["version"])
    build = lib["build"]
    assert (project / build["includeDir"] / lib["headers"]).is_file()
    chosen = _pio_filter(project, build["srcDir"], build["srcFilter"])
    assert {c for c in chosen if c.endswith(".c")} == _model_sources(project)
    assert "main.c" not in chosen and not any(c.startswith("arduino") for c in chosen)
    for flag in build["flags"]:
        assert flag.startswith("-I ") and (project / flag[3:]).is_dir()


def test_arduino_library_is_complete_and_flat(tmp_path):
    project = _project(tmp_path)
    lib = project / "arduino" / "m"
    props = _properties(lib / "library.properties")
    assert all(k in props for k in ARDUINO_REQUIRED), set(ARDUINO_REQUIRED) - set(props)
    assert props["name"] == lib.name and props["category"] in ARDUINO_CATEGORIES
    assert re.fullmatch(r"\d+\.\d+\.\d+", props["version"])
    for header in props["includes"].split(","):
        assert (lib / "src" / header.strip()).is_file()
    want = {Path(s).name: project / s for s in _model_sources(project)}
    want |= {p.name: p for p in [project / "m_model.h", project / "m_weights.h",
                                 *(project / "kernels").glob("*.h")]}
    got = {p.name: p for p in (lib / "src").iterdir()}
    assert set(got) == set(want)  # no main.c, no firmware mains: Arduino has its own main
    assert all(got[n].read_bytes() == want[n].read_bytes() for n in want)

    # Arduino compiles src/ with only src/ on the include path.
    cc = shutil.which("cc")
    require(cc is not None, "cc is needed")
    for c in sorted((lib / "src").glob("*.c")):
        subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(lib / "src"),
                        "-c", str(c), "-o", str(tmp_path / (c.stem + ".o"))], check=True,
                       capture_output=True)


def test_zephyr_cmakelists_links_with_stub_zephyr_functions(tmp_path):
    """The module's CMakeLists.txt with zephyr_library_* as plain CMake: the library it
    describes links with the project's host example, so no source is missing."""
    cmake = shutil.which("cmake")
    require(cmake is not None and shutil.which("cc") is not None, "cmake and cc are needed")
    project = _project(tmp_path)
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.13)
project(app C)
set(CMAKE_C_STANDARD 99)
set(CONFIG_TINYENGINE_M y)
macro(zephyr_library_named name)
  set(ZLIB ${{name}})
  add_library(${{name}} STATIC)
endmacro()
function(zephyr_library_sources)
  target_sources(${{ZLIB}} PRIVATE ${{ARGN}})
endfunction()
function(zephyr_include_directories)
  include_directories(${{ARGN}})
endfunction()
add_subdirectory({project / "zephyr"} zephyr)
add_executable(app {project / "main.c"})
target_link_libraries(app m_model)
""")
    subprocess.run([cmake, "-S", str(app), "-B", str(app / "b")], check=True,
                   capture_output=True)
    subprocess.run([cmake, "--build", str(app / "b")], check=True, capture_output=True)
    assert (app / "b" / "app").is_file()


# --- timing firmware ----------------------------------------------------------------------------

def _require_arm(qemu: bool = True) -> None:
    require(shutil.which("arm-none-eabi-gcc") is not None and shutil.which("make") is not None,
            "arm-none-eabi-gcc and make are needed (apt-get install --no-install-recommends "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    if qemu:
        require(shutil.which("qemu-system-arm") is not None,
                "qemu-system-arm is not installed (apt-get install --no-install-recommends "
                "qemu-system-arm)")


def _timing_lines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^tinyengine-([a-z-]+): (\S+)\r?$", text, re.M))


@pytest.mark.parametrize("board", ["mps2-an385", "microbit"])
def test_timing_firmware_runs_under_qemu(board, tmp_path):
    """Cortex-M3 (DWT, which QEMU lacks: SysTick fallback) and Cortex-M0 (SysTick only)."""
    _require_arm()
    project = _project(tmp_path, HELLO, board)
    subprocess.run(["make", "-s", "-f", "firmware.mk", "timing", "FW_TIMING_RUNS=4"],
                   cwd=project, check=True, capture_output=True)
    runs = [subprocess.run(["make", "-s", "-f", "firmware.mk", "run-timing",
                            "FW_TIMING_RUNS=4"], cwd=project, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    # QEMU writes the semihosting console to stderr.
    got = _timing_lines(runs[0].stderr)
    assert got["status"] == "0" and got["runs"] == "4"
    # QEMU 7.2 has no DWT; a core without one must never claim it.
    assert got["timer"] == "systick"
    least, most, first = (int(got[k]) for k in ("cycles-min", "cycles-max", "cycles-first"))
    assert 0 < least <= first <= most
    clock = int(got["clock-hz"])
    assert clock > 0
    whole, frac = got["us-min"].split(".")
    assert int(whole) * 1000 + int(frac) == least * 10**9 // clock  # nanoseconds, 3 decimals
    assert _timing_lines(runs[1].stderr) == got  # -icount: the same counts every run


def test_timing_uart_variant(tmp_path):
    """The STM32 presets' register-level USART drivers compile (-Werror); the MPS2's CMSDK UART
    prints the same lines on QEMU's serial console; a board without a driver says so."""
    _require_arm(qemu=False)
    for board in ("stm32f746", "stm32f412", "stm32h743"):
        project = _project(tmp_path, HELLO, board)
        subprocess.run(["make", "-s", "-f", "firmware.mk", "timing", "FW_TIMING_UART=1"],
                       cwd=project, check=True, capture_output=True)
    micro = _project(tmp_path, HELLO, "microbit")
    bad = subprocess.run(["make", "-s", "-f", "firmware.mk", "timing", "FW_TIMING_UART=1"],
                         cwd=micro, capture_output=True, text=True)
    assert bad.returncode != 0 and "no UART driver for microbit" in bad.stderr

    _require_arm()
    project = _project(tmp_path, HELLO, "mps2-an385")
    subprocess.run(["make", "-s", "-f", "firmware.mk", "timing", "FW_TIMING_UART=1"],
                   cwd=project, check=True, capture_output=True)
    elf = project / "build-mps2-an385" / "m_timing.elf"
    # No semihosting: the firmware prints and then waits, so QEMU is stopped once it is done.
    qemu = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an385", "-icount", "shift=0",
                             "-nographic", "-monitor", "none", "-kernel", str(elf)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines = []
    try:
        assert qemu.stdout is not None
        for line in qemu.stdout:
            lines.append(line)
            if line.startswith("tinyengine-status"):
                break
    finally:
        qemu.kill()
        qemu.wait(timeout=30)
    got = _timing_lines("".join(lines))
    assert got["status"] == "0" and got["timer"] == "systick" and int(got["cycles-min"]) > 0
