"""Every tutorial notebook is a test: executed by papermill with small budgets, on the project's kernel.

Each notebook carries its own test settings in its metadata, so adding a notebook needs no change
here::

    "rlbench": {
        "ci_parameters": {"total_frames": 2000},   # injected by papermill instead of the defaults
        "ci_expect": ["check_env_specs passed"],   # strings that must appear in the executed outputs
        "ci_checks": ["math.isfinite(final_return)"],  # expressions that must be true at the end
        "ci_mimetypes": ["application/vnd.jupyter.widget-view+json"],  # must appear in some output
        "nbval": true                               # also validate the stored outputs with nbval
    }

How ``ci_checks`` work: papermill cannot reach the kernel's namespace after a run, so the test
appends one extra code cell (tagged ``ci-check``) to a temporary copy of the notebook, holding an
``assert`` per expression (``math`` and ``torch`` are imported for them). papermill runs it last, in
the same kernel, so a false expression or a missing name fails the run with the expression in the
message. The committed notebook never contains that cell, so readers and nbval do not see it.
Every notebook must declare at least one ``ci_expect`` string or ``ci_check``.

Committed notebooks must also be *executed*: every code cell with source has an execution count,
the counts rise strictly from 1, and no output is an error (``test_notebook_was_executed``).

Parallel runs: ``scripts/test.sh`` uses ``pytest-xdist --dist loadscope``, which keeps each scope
(a module, or a class) on one worker. Module-level parametrized tests would put every notebook run on
a single worker, so the slow tests (papermill, nbval) live in one generated class per notebook
(``TestNotebook_<stem>``): each notebook is its own scope and the notebooks spread across workers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
KERNEL = os.environ.get("RLBENCH_KERNEL", "rlbench")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

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


def _output_mimetypes(nb: dict) -> set[str]:
    return {mime for cell in nb["cells"] for out in cell.get("outputs", []) for mime in out.get("data", {})}


def check_cell_source(checks: list[str]) -> str:
    """The source of the hidden ``ci-check`` cell: one assert per expression, naming it on failure."""
    lines = ["# rlbench CI checks, appended by tests/notebooks/test_notebooks.py (not part of the tutorial)",
             "import math, torch"]
    for expr in checks:
        compile(expr, "<ci_checks>", "eval")  # a syntax error should name the expression, not the cell
        lines.append(f"assert ({expr}), {('ci_check failed: ' + expr)!r}")
    return "\n".join(lines) + "\n"


def with_check_cell(nb, checks: list[str]):
    """A copy of ``nb`` (nbformat node) with the ``ci-check`` cell appended when there are checks."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    if checks:
        cell = nbformat.v4.new_code_cell(check_cell_source(checks))
        cell.metadata["tags"] = ["ci-check"]
        nb.cells.append(cell)
    return nb


def execution_problems(nb: dict) -> list[str]:
    """Why ``nb`` does not look executed top to bottom without errors (empty list: it does)."""
    problems, previous = [], 0
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        count = cell.get("execution_count")
        if source.strip() and count is None:
            problems.append(f"cell {i} was never executed")
        elif count is not None:
            if previous == 0 and count != 1:
                problems.append(f"cell {i} is the first executed cell but has execution count {count}, expected 1")
            elif count <= previous:
                problems.append(f"cell {i} has execution count {count} after {previous}: not run in order")
            previous = count
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} has an error output ({out.get('ename')}: {out.get('evalue')})")
    return problems


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no tutorial notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_well_formed(path):
    """Numbered name, a papermill parameters cell, a Python kernelspec, at least one meaningful check."""
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters', found {len(tagged)}"
    assert nb["metadata"].get("kernelspec", {}).get("language") == "python", f"{path.name}: missing kernelspec"
    meta = nb["metadata"].get("rlbench", {})
    assert meta.get("ci_expect") or meta.get("ci_checks"), (
        f"{path.name}: metadata.rlbench needs 'ci_expect' strings or 'ci_checks' expressions, so that CI "
        "checks something meaningful besides 'it ran'"
    )
    for expr in meta.get("ci_checks", []):
        compile(expr, f"{path.name} ci_checks", "eval")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_was_executed(path):
    """The committed notebook was run top to bottom: counts from 1, strictly rising, no error outputs."""
    problems = execution_problems(json.loads(path.read_text()))
    assert not problems, f"{path.name} is not committed executed in order:\n  " + "\n  ".join(problems)


# --- the checkers themselves, against hand-made notebooks -------------------------------------------------

def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    for source, count, outputs in cells:
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        nb.cells.append(cell)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("# prose has no count"))
    return nb


def test_execution_problems_accepts_an_executed_notebook():
    nb = _nb(("a = 1", 1, []), ("", None, []), ("b = 2", 2, []), ("print(b)", 4, []))
    assert execution_problems(nb) == []


@pytest.mark.parametrize("cells, fragment", [
    ([("a = 1", 1, []), ("b = 2", None, [])], "cell 2 was never executed"),
    ([("a = 1", 2, []), ("b = 2", 3, [])], "expected 1"),
    ([("a = 1", 1, []), ("b = 2", 3, []), ("c = 3", 2, [])], "execution count 2 after 3"),
    ([("a = 1", 1, []), ("b = 2", 1, [])], "execution count 1 after 1"),
    ([("1/0", 1, [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                   "traceback": []}])], "error output (ZeroDivisionError: division by zero)"),
])
def test_execution_problems_names_the_problem(cells, fragment):
    problems = execution_problems(_nb(*cells))
    assert any(fragment in p for p in problems), problems


def test_check_cell_asserts_each_expression_and_names_it():
    source = check_cell_source(["x > 0", "math.isfinite(y)"])
    ns: dict = {"x": 1, "y": float("nan")}
    with pytest.raises(AssertionError, match=r"ci_check failed: math\.isfinite\(y\)"):
        exec(source, ns)
    exec(source, {"x": 1, "y": 2.0})  # all true: no error
    with pytest.raises(SyntaxError):
        check_cell_source(["x >"])


def test_with_check_cell_leaves_the_original_alone():
    nb = _nb(("a = 1", 1, []))
    copy = with_check_cell(nb, ["a == 1"])
    assert len(copy.cells) == len(nb.cells) + 1
    assert copy.cells[-1].metadata["tags"] == ["ci-check"] and "assert (a == 1)" in copy.cells[-1].source
    assert len(with_check_cell(nb, []).cells) == len(nb.cells)


# --- the slow part: one class per notebook so that xdist --dist loadscope spreads them ---------------------

def _run_notebook(path: Path, tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    meta = _meta(path)
    src = tmp_path / ("in_" + path.name)
    nbformat.write(with_check_cell(nbformat.read(path, as_version=4), meta.get("ci_checks", [])), src)
    out = tmp_path / path.name
    env_before = os.environ.get("SDL_VIDEODRIVER")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        papermill.execute_notebook(
            str(src), str(out), parameters=meta.get("ci_parameters", {}), kernel_name=KERNEL,
            language="python", cwd=str(NOTEBOOK_DIR), progress_bar=False, execution_timeout=600,
            # nbclient waits only 4 s (its default) after a cell's reply for that cell's last outputs, then drops
            # them with a warning: on a loaded machine a print vanished and its ci_expect failed. Wait longer,
            # and fail loudly rather than lose output.
            iopub_timeout=120, raise_on_iopub_timeout=True,
        )
    finally:
        if env_before is None:
            os.environ.pop("SDL_VIDEODRIVER", None)
    executed = json.loads(out.read_text())
    text = _outputs_text(executed)
    for expected in meta.get("ci_expect", []):
        assert expected in text, f"{path.name}: executed outputs do not contain {expected!r}"
    mimetypes = _output_mimetypes(executed)
    for mime in meta.get("ci_mimetypes", []):
        assert mime in mimetypes, f"{path.name}: no executed output has mimetype {mime!r} (found {sorted(mimetypes)})"


def _run_nbval(path: Path) -> None:
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval",
        "--nbval-kernel-name", KERNEL, "--nbval-sanitize-with", str(NOTEBOOK_DIR / "nbval_sanitize.cfg"),
        str(path),
    ]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run(cmd, cwd=NOTEBOOK_DIR, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"nbval failed for {path.name}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


def _notebook_class(path: Path) -> type:
    def test_notebook_executes(self, tmp_path):
        """Run it with papermill and the small ci_parameters, then ci_expect, ci_checks and ci_mimetypes."""
        _run_notebook(self.path, tmp_path)

    body = {"path": path, "test_notebook_executes": test_notebook_executes}
    if _meta(path).get("nbval"):
        def test_notebook_outputs_match(self):
            """Re-run it in nbval, which compares every output with the committed one."""
            _run_nbval(self.path)

        body["test_notebook_outputs_match"] = test_notebook_outputs_match
    name = "TestNotebook_" + "".join(ch if ch.isalnum() else "_" for ch in path.stem)
    return type(name, (), body)


for _path in NOTEBOOKS:
    _cls = _notebook_class(_path)
    globals()[_cls.__name__] = _cls
if NOTEBOOKS:
    del _path, _cls
