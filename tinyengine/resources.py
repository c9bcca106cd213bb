"""Where the C kernels and templates live: beside the package, in a checkout or an install.

pyproject.toml installs csrc/ and codegen_templates/ as top-level package data, so in both a
source checkout and site-packages they sit next to tinyengine/.
"""

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
CSRC = _ROOT / "csrc"
TEMPLATES = _ROOT / "codegen_templates"

if not (CSRC / "te_common.h").is_file() or not TEMPLATES.is_dir():  # pragma: no cover
    raise ImportError(f"tinyengine is installed without csrc/ or codegen_templates/ beside "
                      f"{_ROOT / 'tinyengine'}; reinstall the package")
