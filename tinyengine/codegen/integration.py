"""The manifests other build systems read, written into every project: a Zephyr module
(zephyr/module.yml, zephyr/CMakeLists.txt, zephyr/Kconfig), a PlatformIO library (library.json)
and an Arduino library (arduino/<prefix>/).

Zephyr and PlatformIO build the project's own files in place: their manifests name the model's
sources (<prefix>_model.c, <prefix>_weights.c, kernels/*.c) and leave out main.c and the
firmware mains, which define main() of their own. Arduino cannot: it compiles everything under a
library's src/ (or, without src/, its top folder, where main.c is) and puts only src/ on the
include path, so arduino/<prefix>/src/ holds copies of the model's files and its kernels side by
side.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jinja2

# Template -> file name in the project ({p}: the prefix).
INTEGRATION_FILES = {"integration_zephyr_module.yml.j2": "zephyr/module.yml",
                     "integration_zephyr_CMakeLists.txt.j2": "zephyr/CMakeLists.txt",
                     "integration_zephyr_Kconfig.j2": "zephyr/Kconfig",
                     "integration_library.json.j2": "library.json",
                     "integration_library.properties.j2": "arduino/{p}/library.properties"}


def model_files(prefix: str, kernel_names: list[str]) -> tuple[list[str], list[str]]:
    """The model's C sources and headers, relative to the project, in a fixed order."""
    sources = [f"{prefix}_model.c", f"{prefix}_weights.c",
               *(f"kernels/{k}" for k in sorted(kernel_names) if k.endswith(".c"))]
    headers = [f"{prefix}_model.h", f"{prefix}_weights.h",
               *(f"kernels/{k}" for k in sorted(kernel_names) if k.endswith(".h"))]
    return sources, headers


def write_integration(project: Path, env: jinja2.Environment, ctx: dict[str, Any],
                      kernel_names: list[str]) -> None:
    """Write the manifests into `project`, where the model's files are already written."""
    prefix = ctx["prefix"]
    sources, headers = model_files(prefix, kernel_names)
    for template, name in INTEGRATION_FILES.items():
        path = project / name.format(p=prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**ctx, sources=sources))
    src = project / "arduino" / prefix / "src"
    src.mkdir()
    for rel in [*sources, *headers]:
        shutil.copyfile(project / rel, src / Path(rel).name)
