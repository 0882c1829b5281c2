"""The pure front-end helpers (widgets/lib) under `node --test` (no browser needed)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_node_helpers():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the widgets/lib helper tests need `node --test`")
    files = sorted(str(p) for p in (ROOT / "widgets" / "tests").glob("*.test.mjs"))
    assert files, "no widgets/tests/*.test.mjs files"
    proc = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout
