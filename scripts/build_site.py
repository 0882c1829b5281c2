"""Render the executed tutorial notebooks to a static site that reads offline, without a kernel.

    python scripts/build_site.py                 # notebooks/NN_*.ipynb -> site/ (their stored outputs)
    python scripts/build_site.py --out /tmp/site
    python scripts/build_site.py --execute       # re-run each notebook first (full-size defaults)
    python scripts/build_site.py --execute --ci  # ... with its small metadata.rlbench.ci_parameters

Each notebook becomes ``<stem>.html`` next to an ``index.html`` that lists them in reading order,
with the title (first markdown heading) and a one-line summary (the first prose line after it).

Why the pages work offline:
- nbconvert shows a widget output as a live widget only when the notebook stores widget state
  (``metadata.widgets``), and then loads require.js and the widget manager from a CDN, which draws
  nothing of ours offline. Without that state it falls back to the output's ``text/html``, which for
  every rlbench inspector is a self-contained offline copy (data, code and CSS inline). So the state
  is dropped from the in-memory copy that is rendered (the committed notebook is not touched).
- The page template extends nbconvert's ``lab`` template with the require.js, MathJax, Mermaid and
  widget-manager script tags removed. Math in markdown then shows as TeX source; nothing else
  needed them. :func:`external_scripts` finds any ``<script src=http...>`` left, and the build
  fails if one is (tests/test_site.py checks the same on a fresh build).
"""
from __future__ import annotations

import argparse
import copy
import html
import re
import sys
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL = "rlbench"

# Extends nbconvert's lab page: every block that emits a CDN <script src> is emptied, and a small
# navigation bar (index / previous / next) is added above the notebook.
PAGE_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style>
.rlb-site-nav{display:flex;gap:1.5em;padding:8px 16px;border-bottom:1px solid #ddd;
  font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:14px;}
.rlb-site-nav a{text-decoration:none;}
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="rlb-site-nav">{{ resources.rlb_nav }}</nav>
{%- endblock body_header -%}
"""

INDEX_CSS = """
body{margin:0 auto;max-width:860px;padding:24px;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;
  line-height:1.5;color:#222;}
h1{margin-bottom:0.2em;} ol{padding-left:1.4em;} li{margin:0.9em 0;}
li a{font-weight:600;font-size:1.05em;} .summary{color:#555;margin-top:0.15em;}
code{background:#f3f3f3;padding:0 3px;border-radius:3px;}
@media (prefers-color-scheme: dark){body{background:#111;color:#ddd;} .summary{color:#aaa;}
  code{background:#222;} a{color:#8ab4f8;}}
"""

_EXTERNAL_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]+""", re.I)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The tutorial notebooks in reading order (``NN_name.ipynb``)."""
    return sorted(Path(directory).glob("[0-9][0-9]_*.ipynb"))


def external_scripts(page: str) -> list[str]:
    """Every ``<script src=...>`` tag in ``page`` that points off the page (http, https, //)."""
    return [m.group(0) for m in _EXTERNAL_SCRIPT.finditer(page)]


def _markdown_inline(text: str) -> str:
    """Escape a one-line summary and keep its `code` spans; other markdown marks are dropped."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)  # links -> their text
    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            out.append(html.escape(re.sub(r"(\*\*|__|\*|_(?=\S))", "", part)))
    return "".join(out)


def _shorten(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    text = text[:limit - 1]
    if text.count("`") % 2:  # cut inside a `code` span: drop the open span
        text = text[:text.rfind("`")]
    return text.rstrip(" ,;:") + "\u2026"


def _summary_from(lines: list[str]) -> str:
    """First sentence of the first prose paragraph; a paragraph ending in ':' takes its list along."""
    paragraph, items, i = [], [], 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or _HEADING.match(line) or line.startswith(("<", "|", "```", ">", "![")):
            if paragraph:
                break
            continue
        if re.match(r"^([-*+]|\d+[.)])\s", line) and not paragraph:
            continue  # a list before any prose is not a summary
        paragraph.append(line)
    text = " ".join(paragraph)
    match = re.search(r"(?<=[.!?])\s", text)
    if match:
        return _shorten(text[:match.start()])
    if not text.endswith((".", "!", "?")):  # "... this notebook:" or "... this notebook" then a list
        while i < len(lines) and (not lines[i].strip() or re.match(r"^\s*([-*+]|\d+[.)])\s", lines[i])):
            item = re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", lines[i]).strip().rstrip(".;,")
            if item:
                items.append(item)
            elif items:
                break
            i += 1
        if items:
            text = text + " " + "; ".join(items) + "."
    return _shorten(text)


def title_and_summary(nb) -> tuple[str, str]:
    """The first markdown heading and a one-line summary of the prose after it.

    ``metadata.rlbench.summary`` overrides the summary when a notebook wants to choose its own.
    """
    title, lines = "", []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            heading = _HEADING.match(line)
            if not title and heading:
                title = heading.group(1)
            elif title:
                lines.append(line)
        lines.append("")
    summary = nb.metadata.get("rlbench", {}).get("summary") or _summary_from(lines)
    return title, summary


def offline_copy(nb):
    """A copy of ``nb`` without stored widget state, so inspectors render from their offline HTML."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    return nb


def _inject_parameters(nb, parameters: dict) -> None:
    """Insert ``name = value`` assignments after the ``parameters`` cell (papermill's convention)."""
    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "# Parameters injected by build_site.py --ci\n" + "".join(
                f"{name} = {value!r}\n" for name, value in parameters.items())
            new = nbformat.v4.new_code_cell(source)
            new.metadata["tags"] = ["injected-parameters"]
            nb.cells.insert(i + 1, new)
            return
    raise ValueError("the notebook has no cell tagged 'parameters' to inject the CI parameters after")


def execute(nb, path: Path, ci: bool = False, kernel: str = KERNEL, timeout: int = 1800):
    """Run ``nb`` (a copy) top to bottom in ``path``'s folder, storing no widget state."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    if ci:
        _inject_parameters(nb, nb.metadata.get("rlbench", {}).get("ci_parameters", {}))
    client = NotebookClient(nb, kernel_name=kernel, timeout=timeout, store_widget_state=False,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute()
    return nb


def _nav(pages: list[tuple[str, str]], i: int) -> str:
    links = ['<a href="index.html">&#8962; All tutorials</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1][0]}">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return "".join(links)


def render_index(entries: list[dict], title: str = "rlbench tutorials") -> str:
    """The index page: one list item per notebook, in order, linking to its page."""
    items = "\n".join(
        f'<li><a href="{html.escape(e["href"])}">{html.escape(e["title"])}</a>'
        f'<div class="summary">{_markdown_inline(e["summary"])}</div></li>'
        for e in entries
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{INDEX_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        "<p>The rlbench notebooks, rendered with their outputs. The inspectors work here without a kernel "
        "(buttons that need Python say so); to run the code, open the notebooks in JupyterLab.</p>"
        f"<ol class=\"rlb-tutorials\">\n{items}\n</ol></body></html>\n"
    )


def build_site(out: Path, sources: list[Path] | None = None, execute_first: bool = False, ci: bool = False,
               kernel: str = KERNEL) -> list[Path]:
    """Render ``sources`` (default: every tutorial notebook) into ``out``; returns the pages written.

    Raises:
        ValueError: no notebooks, or a rendered page still loads a script from the network.
    """
    sources = notebooks() if sources is None else [Path(p) for p in sources]
    if not sources:
        raise ValueError("no notebooks to render: expected notebooks/NN_name.ipynb files")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"rlb_page.html.j2": PAGE_TEMPLATE})],
                            template_file="rlb_page.html.j2")
    loaded = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        if execute_first:
            nb = execute(nb, path, ci=ci, kernel=kernel)
        title, summary = title_and_summary(nb)
        loaded.append((path, offline_copy(nb), title or path.stem, summary))
    pages = [(p.stem + ".html", t) for p, _, t, _ in loaded]
    written = []
    for i, (path, nb, title, _) in enumerate(loaded):
        nb.metadata["title"] = title  # the page's <title>
        resources = {"metadata": {"name": path.stem}, "rlb_nav": _nav(pages, i)}
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        bad = external_scripts(body)
        if bad:
            raise ValueError(f"{path.name}: the rendered page loads scripts from the network: {bad[:3]}")
        target = out / pages[i][0]
        target.write_text(body, encoding="utf-8")
        written.append(target)
    entries = [{"href": href, "title": title, "summary": summary}
               for (href, _), (_, _, title, summary) in zip(pages, loaded)]
    index = out / "index.html"
    index.write_text(render_index(entries), encoding="utf-8")
    return [index] + written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to render (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    parser.add_argument("--execute", action="store_true", help="re-run each notebook before rendering")
    parser.add_argument("--ci", action="store_true", help="with --execute: use the small ci_parameters")
    parser.add_argument("--kernel", default=KERNEL, help="kernel for --execute (default: rlbench)")
    args = parser.parse_args(argv)
    if args.ci and not args.execute:
        parser.error("--ci only makes sense with --execute")
    written = build_site(args.out, args.notebooks or None, execute_first=args.execute, ci=args.ci, kernel=args.kernel)
    sys.stdout.write(f"wrote {len(written)} pages to {args.out}; open {args.out / 'index.html'}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
