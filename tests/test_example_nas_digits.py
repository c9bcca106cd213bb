"""examples/nas_digits.py runs end to end (with --quick settings)."""

from __future__ import annotations

import nas_digits  # examples/ is on sys.path (conftest.py)


def test_walkthrough_runs(tmp_path, capsys):
    nas_digits.main(["--quick", "-o", str(tmp_path / "nas")])
    out = capsys.readouterr().out
    assert "int8 accuracy of the C" in out and "predicted" in out
    assert (tmp_path / "nas" / "pareto.png").exists()
    assert (tmp_path / "nas" / "project" / "report.json").exists()
