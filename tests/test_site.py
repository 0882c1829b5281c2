"""The static site (scripts/build_site.py): pages and index from executed notebooks, readable offline.

The fixture notebooks are made here with nbformat; their inspector outputs are the real
``_repr_mimebundle_`` of rlbench inspectors, with widget state stored in the metadata the way
papermill/nbclient save it, so the tests see what the committed notebooks hold.
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")
pytest.importorskip("anywidget")

ROOT = Path(__file__).resolve().parents[1]
KERNEL = os.environ.get("RLBENCH_KERNEL", "rlbench")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# independent of build_site's own regex: any src/href attribute that leaves the page
OFF_PAGE = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def _load_build_site():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "scripts" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_site = _load_build_site()


def _inspector_output(widget):
    data, metadata = widget._repr_mimebundle_()
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata or {})


def _notebook(title: str, prose: str, cells: list[tuple[str, list]], widget_ids=()):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\n{prose}"))
    for n, (source, outputs) in enumerate(cells, start=1):
        nb.cells.append(nbformat.v4.new_code_cell(source, execution_count=n, outputs=outputs))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if widget_ids:  # what papermill/nbclient store by default, and what hides our offline HTML
        nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
            mid: {"model_name": "AnyModel", "model_module": "anywidget", "model_module_version": "*",
                  "state": {}} for mid in widget_ids}}}
    return nb


@pytest.fixture
def two_notebooks(tmp_path):
    from rlbench.widgets import TrainingMonitor

    monitor = TrainingMonitor(title="site test curve")
    for step in range(5):
        monitor.log_scalar("reward", float(step * step), step)
    monitor.close()
    out = _inspector_output(monitor)
    model_id = out["data"][WIDGET_VIEW]["model_id"]
    first = _notebook(
        "01 · First steps",
        "This notebook *shows* a `TrainingMonitor`. More text follows.\n\nA second paragraph.",
        [("from rlbench.widgets import TrainingMonitor", []), ("monitor", [out])],
        widget_ids=[model_id],
    )
    second = _notebook(
        "02 · Second",
        "In a few minutes this notebook\n\n1. adds numbers,\n2. prints them.",
        [("print(1 + 1)", [nbformat.v4.new_output("stream", name="stdout", text="2\n")])],
    )
    src = tmp_path / "nbs"
    src.mkdir()
    paths = [src / "01_first.ipynb", src / "02_second.ipynb"]
    nbformat.write(first, paths[0])
    nbformat.write(second, paths[1])
    return paths


def test_site_has_an_index_and_a_page_per_notebook(two_notebooks, tmp_path):
    out = tmp_path / "site"
    written = build_site.build_site(out, two_notebooks)
    assert sorted(p.name for p in written) == ["01_first.html", "02_second.html", "index.html"]
    index = (out / "index.html").read_text()
    first, second = index.index('href="01_first.html"'), index.index('href="02_second.html"')
    assert first < second, "tutorials must be listed in reading order"
    assert "01 · First steps" in index and "02 · Second" in index
    # one-line summaries: the first sentence, markdown emphasis dropped, code kept as <code>
    assert "This notebook shows a <code>TrainingMonitor</code>." in index
    assert "More text follows" not in index and "second paragraph" not in index
    assert "In a few minutes this notebook adds numbers; prints them." in index
    page = (out / "02_second.html").read_text()
    assert "<title>02 · Second</title>" in page
    assert 'href="index.html"' in page and 'href="01_first.html"' in page  # navigation


def test_pages_show_inspectors_offline_without_cdn_scripts(two_notebooks, tmp_path):
    out = tmp_path / "site"
    build_site.build_site(out, two_notebooks)
    page = (out / "01_first.html").read_text()
    assert 'class="rlb-offline"' in page, "the inspector's offline HTML must be what the page shows"
    assert 'type="module"' in page and "bootOffline(" in page
    assert f'type="{WIDGET_VIEW}"' not in page, "a widget-manager placeholder was rendered instead"
    for path in out.glob("*.html"):
        text = path.read_text()
        assert not OFF_PAGE.findall(text), f"{path.name} loads from the network: {OFF_PAGE.findall(text)[:3]}"
        assert build_site.external_scripts(text) == []
    # the committed notebook keeps its widget state: only the rendered copy drops it
    assert "widgets" in nbformat.read(two_notebooks[0], as_version=4).metadata


def test_plain_nbconvert_would_need_the_network(two_notebooks):
    """The reference the site is built against: nbconvert's stock lab export of the same notebook.

    It loads require.js and the widget manager from CDNs, and shows a placeholder, not our HTML.
    """
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(two_notebooks[0], as_version=4))
    assert build_site.external_scripts(body), "expected CDN scripts in nbconvert's stock export"
    assert f'type="{WIDGET_VIEW}"' in body


def test_external_scripts_finds_off_page_sources():
    page = ('<script src="https://cdn.example/a.js"></script><script src=//cdn.example/b.js></script>'
            '<script type="module">import("./local.js")</script><script src="local.js"></script>')
    found = build_site.external_scripts(page)
    assert len(found) == 2 and "cdn.example/a.js" in found[0] and "cdn.example/b.js" in found[1]


def test_build_fails_when_a_page_would_load_a_script(tmp_path):
    nb = _notebook("01 · Bad", "Embeds a CDN script.", [])
    nb.cells.append(nbformat.v4.new_markdown_cell('<script src="https://cdn.example/x.js"></script>'))
    path = tmp_path / "01_bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match=r"01_bad\.ipynb: the rendered page loads scripts from the network"):
        build_site.build_site(tmp_path / "site", [path])


def test_title_and_summary():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_markdown_cell(
                    "# 03 · Title\n\n![img](a.png)\n\nThe idea, in [one](http://x) line! More.")]
    assert build_site.title_and_summary(nb) == ("03 · Title", "The idea, in [one](http://x) line!")
    nb.metadata["rlbench"] = {"summary": "Chosen by the author."}
    assert build_site.title_and_summary(nb)[1] == "Chosen by the author."
    long = nbformat.v4.new_notebook()
    long.cells = [nbformat.v4.new_markdown_cell("# T\n\n" + "word " * 80 + "`a code span that is cut` end")]
    summary = build_site.title_and_summary(long)[1]
    assert len(summary) <= 240 and summary.endswith("\u2026") and summary.count("`") % 2 == 0


def test_no_notebooks_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no notebooks to render"):
        build_site.build_site(tmp_path / "site", [])


def test_cli(two_notebooks, tmp_path, capsys):
    out = tmp_path / "cli_site"
    assert build_site.main([str(p) for p in two_notebooks] + ["--out", str(out)]) == 0
    assert (out / "index.html").exists() and "wrote 3 pages" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_site.main(["--ci"])
    assert "--ci only makes sense with --execute" in capsys.readouterr().err


def test_execute_ci_injects_parameters_and_stores_no_widget_state(tmp_path):
    pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("steps = 1000")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · Run"), params,
                nbformat.v4.new_code_cell("import ipywidgets\nprint('steps', steps)\nipywidgets.IntSlider(steps)")]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "rlbench", "language": "python"}
    nb.metadata["rlbench"] = {"ci_parameters": {"steps": 3}}
    path = tmp_path / "01_run.ipynb"
    nbformat.write(nb, path)
    try:
        build_site.build_site(tmp_path / "site", [path], execute_first=True, ci=True, kernel=KERNEL)
    except Exception as exc:  # no such kernel here: say so rather than fail on setup
        if "No such kernel" in str(exc):
            pytest.skip(f"kernel {KERNEL!r} is not installed (scripts/setup.sh registers it)")
        raise
    page = (tmp_path / "site" / "01_run.html").read_text()
    assert "steps 3" in page and "steps 1000" not in page
    assert f'type="{WIDGET_VIEW}"' not in page and not build_site.external_scripts(page)
    assert "widgets" not in nbformat.read(path, as_version=4).metadata  # the source is untouched


def test_index_and_page_render_in_an_offline_browser(two_notebooks, tmp_path):
    """Open index.html with the network blocked, follow the first link, see the inspector drawn."""
    chromium = os.environ.get("RLBENCH_CHROMIUM", "/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'rlbench[dev]')")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium}")
    out = tmp_path / "site"
    build_site.build_site(out, two_notebooks)
    blocked, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context()

            def route(r):
                if r.request.url.startswith(("file:", "blob:", "data:")):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto((out / "index.html").as_uri())
            page.locator("ol.rlb-tutorials a", has_text="First steps").click()
            page.wait_for_selector(".rlb-training-monitor", timeout=15_000)
            page.wait_for_function("document.querySelectorAll('[data-rlb-rendered]').length === 1", timeout=15_000)
            assert page.locator(".rlb-training-monitor path.rlb-chart-line").count() == 1
            assert page.title() == "01 · First steps"
        finally:
            browser.close()
    assert blocked == [] and errors == []
