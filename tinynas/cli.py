"""The `tinynas` command. The search pipeline is not built yet; it says so plainly."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("tinynas: the architecture search is not available in this version yet; "
          "use `tinyengine` to compile int8 models", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
