"""Inspector infrastructure: static lookup, ESM assembly, binary packing, offline HTML, show()."""
from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("anywidget")

from rlbench.envs import CartPoleEnv  # noqa: E402
from rlbench.specs import Composite, Unbounded  # noqa: E402
from rlbench.widgets import (  # noqa: E402
    SpecInspector,
    TrainingMonitor,
    _static,  # noqa: E402
    pack_array,
    show,
)
from rlbench.widgets.base import escape  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EVIL = "<img src=x onerror=alert(1)>"


def payload_of(html: str) -> dict:
    match = re.search(r'<script type="application/json">(.*?)</script>', html, re.S)
    assert match, "no embedded payload"
    return json.loads(match.group(1))


# ---------------------------------------------------------------- static lookup
def test_static_dir_editable_finds_source_tree(monkeypatch):
    monkeypatch.delenv("RLBENCH_WIDGETS_DIR", raising=False)
    assert _static.static_dir() == ROOT / "widgets"


def test_static_dir_prefers_wheel_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("RLBENCH_WIDGETS_DIR", raising=False)
    pkg = tmp_path / "site" / "rlbench"
    (pkg / "_widgets_static" / "lib").mkdir(parents=True)
    assert _static.static_dir(pkg) == pkg / "_widgets_static"


def test_static_dir_env_override_and_error(tmp_path, monkeypatch):
    (tmp_path / "custom" / "lib").mkdir(parents=True)
    monkeypatch.setenv("RLBENCH_WIDGETS_DIR", str(tmp_path / "custom"))
    assert _static.static_dir(tmp_path / "nowhere") == tmp_path / "custom"
    monkeypatch.delenv("RLBENCH_WIDGETS_DIR")
    with pytest.raises(FileNotFoundError, match="front-end files not found; looked in .*_widgets_static"):
        _static.static_dir(tmp_path / "pkg" / "rlbench")


# ---------------------------------------------------------------- ESM assembly
def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_load_esm_inlines_each_helper_once_in_dependency_order(tmp_path):
    _write(tmp_path, "lib/a.js", "export function a() { return 1; }\n")
    _write(tmp_path, "lib/b.js", 'import { a } from "./a.js";\nexport const b = () => a() + 1;\n')
    _write(tmp_path, "view.js", 'import { a } from "./lib/a.js";\nimport { b } from "./lib/b.js";\n'
                                "export default { render() { return a() + b(); } };\n")
    src = _static.load_esm("view", tmp_path)
    assert src.count("function a()") == 1
    assert src.index("function a()") < src.index("const b =") < src.index("export default")
    assert "import" not in src and "export function" not in src and "export const" not in src
    # the assembled module really runs: node imports it from a data URL
    node = pytest.importorskip("shutil").which("node")
    if node:
        code = ("import(process.argv[1]).then(m => console.log(m.default.render()))")
        url = "data:text/javascript;base64," + base64.b64encode(src.encode()).decode()
        out = subprocess.run([node, "-e", code, url], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "3", out.stderr


def test_load_esm_rejects_unsupported_imports(tmp_path):
    _write(tmp_path, "lib/a.js", "export const a = 1;\n")
    _write(tmp_path, "view.js", 'import * as lib from "./lib/a.js";\nexport default {};\n')
    with pytest.raises(ValueError, match=r"view.js:1: unsupported import .*import \{ a, b \}"):
        _static.load_esm("view", tmp_path)
    _write(tmp_path, "view.js", 'import { a } from "./lib/missing.js";\n')
    with pytest.raises(FileNotFoundError, match="view.js:1: imports './lib/missing.js'"):
        _static.load_esm("view", tmp_path)
    with pytest.raises(FileNotFoundError, match="no view module nope.js"):
        _static.load_esm("nope", tmp_path)


def test_real_views_assemble():
    for view in ("spec_inspector", "training_monitor"):
        src = _static.load_esm(view)
        assert "export default" in src and not re.search(r"^\s*import\b", src, re.M)
        assert ".rlb-root" in _static.load_css(view)


# ---------------------------------------------------------------- binary packing
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool])
def test_pack_array_round_trip(dtype):
    x = (torch.arange(6).reshape(2, 3) % 2).to(dtype)
    packed = pack_array(x.t())  # non-contiguous input
    back = np.frombuffer(packed["data"], dtype=packed["dtype"]).reshape(packed["shape"])
    assert packed["shape"] == [3, 2]
    np.testing.assert_array_equal(back, x.t().numpy())


def test_pack_array_widens_half():
    packed = pack_array(torch.tensor([1.5], dtype=torch.float16))
    assert packed["dtype"] == "float32" and np.frombuffer(packed["data"], "float32").tolist() == [1.5]


# ---------------------------------------------------------------- offline HTML
def test_save_html_is_self_contained(tmp_path):
    monitor = TrainingMonitor(title="run")
    monitor.log_scalars({"loss": 0.5, "return": 3.0}, step=1)
    monitor.log_scalars({"loss": 0.25, "return": 4.0}, step=2)
    monitor.flush()
    path = monitor.save_html(tmp_path / "m.html")
    html = Path(path).read_text()
    assert html.startswith("<!DOCTYPE html>") and "<title>run</title>" in html
    # nothing to fetch (the SVG namespace URI is an identifier, not a request)
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|import\s*\(\s*["']https?:|from\s*["']https?:""", html)
    payload = payload_of(html)
    assert payload["view"] == "training_monitor"
    assert "export default" in payload["esm"] and ".rlb-root" in payload["css"]
    state = payload["state"]
    assert state["title"] == "run" and "_esm" not in state and "layout" not in state
    # binary values travel as base64 buffers at the recorded paths
    paths = payload["buffer_paths"]
    i = paths.index(["series", "loss", "value", "data"])
    assert np.frombuffer(base64.b64decode(payload["buffers"][i]), "float64").tolist() == [0.5, 0.25]
    assert "bootOffline(" in html and "<\\/" not in payload["esm"]


def test_html_is_deterministic_and_escapes_hostile_strings():
    spec = Composite({EVIL: Unbounded((2,)), "</script><b>x": Unbounded((1,))})
    a = SpecInspector(spec, title=EVIL).to_html()
    b = SpecInspector(spec, title=EVIL).to_html()
    assert a == b  # ids are content hashes: re-running a notebook gives identical outputs
    assert EVIL not in a and "</script><b>" not in a
    assert escape(EVIL) in a  # the summary table shows it as text
    assert payload_of(a)["state"]["groups"][0]["node"]["children"][0]["key"] == EVIL


def test_mimebundle_has_widget_html_png_and_plain():
    monitor = TrainingMonitor(title="t")
    monitor.log_scalar("loss", 1.0, 0)
    monitor.close()
    data, _ = monitor._repr_mimebundle_()
    assert set(data) >= {"application/vnd.jupyter.widget-view+json", "text/html", "image/png", "text/plain"}
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == monitor.model_id
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert data["text/plain"] == "TrainingMonitor(title='t', metrics=['loss'])"


def test_mimebundle_falls_back_to_summary_when_too_big(monkeypatch):
    import rlbench.widgets.base as base

    monkeypatch.setattr(base, "MAX_FALLBACK_HTML_BYTES", 100)
    data, _ = SpecInspector(CartPoleEnv())._repr_mimebundle_()
    assert data["text/html"].startswith('<table class="rlb-summary">')
    assert "observation_spec[observation]" in data["text/html"]


# ---------------------------------------------------------------- show() and imports
def test_show_dispatch():
    assert isinstance(show(CartPoleEnv()), SpecInspector)
    assert isinstance(show(Unbounded((3,))), SpecInspector)
    with pytest.raises(TypeError, match=r"cannot inspect a builtins.int; it supports an env .* replay buffer"):
        show(3)



def test_big_binary_state_is_not_embedded(monkeypatch):
    import rlbench.widgets.base as base

    monitor = TrainingMonitor(max_points=50_000)
    monitor.log_scalars({"loss": 1.0}, step=0)
    for i in range(1, 20_000):
        monitor._steps["loss"].append(i)
        monitor._values["loss"].append(float(i))
    monitor._dirty = True
    monitor.flush()  # 2 x 160 kB of float64 buffers
    assert monitor.to_html(max_bytes=100_000) is None
    assert monitor.to_html(max_bytes=10_000_000) is not None
    monkeypatch.setattr(base, "_json_for_html", lambda obj: pytest.fail("encoded a payload that was too big"))
    monkeypatch.setattr(base, "MAX_FALLBACK_HTML_BYTES", 100_000)
    data, _ = monitor._repr_mimebundle_()
    assert data["text/html"].startswith('<table class="rlb-summary">') and "20000 values" in data["text/html"]


def test_show_rollout_and_replay_buffer():
    from tensordict import TensorDict

    from rlbench.buffers import LazyTensorStorage, ReplayBuffer
    from rlbench.widgets import ReplayInspector, RolloutInspector

    env = CartPoleEnv(seed=0)
    assert isinstance(show(env.rollout(5)), RolloutInspector)
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    rb.extend(TensorDict({"x": torch.zeros(4, 2)}, [4]))
    assert isinstance(show(rb), ReplayInspector)
