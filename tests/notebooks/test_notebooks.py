"""Every tutorial notebook is a test: executed by papermill with small budgets, on the project's kernel.

Each notebook carries its own test settings in its metadata, so adding a notebook needs no change
here::

    "rlbench": {
        "ci_parameters": {"total_frames": 2000},   # injected by papermill instead of the defaults
        "ci_expect": ["check_env_specs passed"],   # strings that must appear in the executed outputs
        "nbval": true                               # also validate the stored outputs with nbval
    }
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
KERNEL = os.environ.get("RLBENCH_KERNEL", "rlbench")

pytestmark = pytest.mark.notebook


def _meta(path: Path) -> dict:
    return json.loads(path.read_text())["metadata"].get("rlbench", {})


def _outputs_text(nb: dict) -> str:
    chunks = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                chunks.append("".join(out["text"]))
            for mime in ("text/plain", "text/html"):
                if mime in out.get("data", {}):
                    chunks.append("".join(out["data"][mime]))
    return "\n".join(chunks)


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no tutorial notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_well_formed(path):
    """Numbered name, a papermill parameters cell, a Python kernelspec, no stray error outputs."""
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters', found {len(tagged)}"
    assert nb["metadata"].get("kernelspec", {}).get("language") == "python", f"{path.name}: missing kernelspec"
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: committed with error outputs"
    counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs")]
    assert counts == sorted(c for c in counts if c is not None), f"{path.name}: cells were not run in order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
    papermill = pytest.importorskip("papermill")
    meta = _meta(path)
    out = tmp_path / path.name
    env_before = os.environ.get("SDL_VIDEODRIVER")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        papermill.execute_notebook(
            str(path), str(out), parameters=meta.get("ci_parameters", {}), kernel_name=KERNEL,
            language="python", cwd=str(NOTEBOOK_DIR), progress_bar=False, execution_timeout=600,
        )
    finally:
        if env_before is None:
            os.environ.pop("SDL_VIDEODRIVER", None)
    executed = json.loads(out.read_text())
    text = _outputs_text(executed)
    for expected in meta.get("ci_expect", []):
        assert expected in text, f"{path.name}: executed outputs do not contain {expected!r}"


GOLDEN = [p for p in NOTEBOOKS if _meta(p).get("nbval")]


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_notebook_outputs_match(path):
    """nbval re-runs the notebook and compares every output with the committed one."""
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval",
        "--nbval-kernel-name", KERNEL, "--nbval-sanitize-with", str(NOTEBOOK_DIR / "nbval_sanitize.cfg"),
        str(path),
    ]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run(cmd, cwd=NOTEBOOK_DIR, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"nbval failed for {path.name}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
