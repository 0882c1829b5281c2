"""ReplayInspector's Python side.

Summary, chunked statistics against direct computation, the priority histogram, paging (and how
little it sends), sampling without side effects, messages.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tensordict import TensorDict

pytest.importorskip("anywidget")

from rlbench.buffers import (  # noqa: E402
    LazyMemmapStorage,
    LazyTensorStorage,
    ListStorage,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    SamplerWithoutReplacement,
    TensorDictReplayBuffer,
)
from rlbench.widgets.replay_inspector import (  # noqa: E402
    ReplayInspector,
    buffer_page,
    buffer_stats,
    buffer_summary,
    priority_histogram,
)

EVIL = "<img src=x onerror=alert(1)>"


def transitions(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDict({
        "observation": torch.randn(n, 4, generator=g),
        "action": torch.randint(0, 3, (n,), generator=g),
        "next": {"reward": torch.rand(n, 1, generator=g), "done": torch.rand(n, 1, generator=g) < 0.1},
    }, [n])


def state_bytes(w) -> int:
    """Bytes of the widget's JSON state (what the comm would send), buffers included."""
    return len(json.dumps(w.get_state(), default=lambda b: "x" * len(b)))


def test_summary_of_a_wrapped_ring_buffer():
    rb = ReplayBuffer(storage=LazyTensorStorage(100), batch_size=16)
    rb.extend(transitions(130))
    s = buffer_summary(rb)
    assert (s["capacity"], s["length"], s["write_cursor"], s["rows"], s["fill"]) == (100, 100, 30, 100, 1.0)
    assert (s["buffer"], s["storage"], s["sampler"], s["writer"]) == (
        "ReplayBuffer", "LazyTensorStorage", "RandomSampler", "RoundRobinWriter")
    assert s["batch_size"] == 16 and s["prioritized"] is False


def test_summary_of_a_multi_dim_storage():
    rb = TensorDictReplayBuffer(storage=LazyTensorStorage(20, ndim=2))
    rb.extend(transitions(6).reshape(3, 2))
    s = buffer_summary(rb)
    assert (s["shape"], s["rows"], s["items_per_row"], s["len_rows"], s["length"], s["write_cursor"]) == (
        [10, 2], 10, 2, 3, 6, 3)
    p = buffer_page(rb, 0, page_size=4)
    assert [r[0] for r in p["rows"]] == ["0 (0, 0)", "1 (0, 1)", "2 (1, 0)", "3 (1, 1)"]


def test_stats_match_direct_computation_across_chunks():
    data = transitions(1000)
    data["observation"][5, 2] = float("nan")
    rb = ReplayBuffer(storage=LazyTensorStorage(2000))
    rb.extend(data)
    stats = {s["name"]: s for s in buffer_stats(rb, chunk=128)}  # 8 chunks: the sums must combine
    obs = data["observation"].double()
    finite = obs[torch.isfinite(obs)]
    o = stats["observation"]
    assert o["count"] == 3999 and o["nonfinite"] == 1 and o["shape"] == [4] and o["dtype"] == "float32"
    assert o["mean"] == pytest.approx(float(finite.mean()), rel=1e-9)
    assert o["std"] == pytest.approx(float(finite.std(unbiased=False)), rel=1e-6)
    assert (o["min"], o["max"]) == (float(finite.min()), float(finite.max()))
    d = stats["next.done"]
    assert d["dtype"] == "bool" and d["mean"] == pytest.approx(float(data["next", "done"].float().mean()))
    a = stats["action"]
    assert (a["min"], a["max"], a["dtype"]) == (0.0, 2.0, "int64")


def test_stats_of_list_storage_and_plain_tensors():
    rb = ReplayBuffer(storage=ListStorage(10))
    rb.extend([torch.tensor([1.0, 3.0]), torch.tensor([5.0, 7.0])])
    (s,) = buffer_stats(rb)
    assert (s["name"], s["mean"], s["min"], s["max"], s["count"]) == ("(tensor)", 4.0, 1.0, 7.0, 4)
    odd = ReplayBuffer(storage=ListStorage(10))
    odd.extend(["a", {"x": 1}, 3])
    assert buffer_stats(odd) == []
    p = buffer_page(odd, 0)
    assert p["columns"] == ["index", "item"] and p["rows"][1] == ["1", "{'x': 1}"]
    w = ReplayInspector(odd)  # never crashes on arbitrary objects
    assert w.summary["length"] == 3


def test_priority_histogram_counts_every_item():
    rb = PrioritizedReplayBuffer(alpha=1.0, beta=0.4, eps=0.0, storage=LazyTensorStorage(100))
    rb.extend(transitions(50))
    rb.update_priority(torch.arange(50), torch.arange(50, dtype=torch.float32) + 1)
    hg = priority_histogram(rb, bins=10)
    assert sum(hg["counts"]) == 50 and hg["counts"] == [5] * 10
    assert (hg["min"], hg["max"]) == (1.0, 50.0) and len(hg["edges"]) == 11
    assert priority_histogram(ReplayBuffer(storage=LazyTensorStorage(5))) == {}
    w = ReplayInspector(rb)
    assert w.summary["prioritized"] and w.summary["alpha"] == 1.0 and w.histogram["count"] == 50
    assert w.to_png()[:4] == b"\x89PNG"


def test_pages_are_small_for_a_million_items(tmp_path):
    n = 1_000_000
    rb = ReplayBuffer(storage=LazyMemmapStorage(n, scratch_dir=tmp_path))
    rb.extend(transitions(n))
    w = ReplayInspector(rb, page_size=50)
    assert w.page["pages"] == 20_000 and len(w.page["rows"]) == 50
    assert state_bytes(w) < 40_000  # summary + stats + one page, not 1M items
    before = json.dumps(w.page)
    w._on_msg(w, {"type": "page", "page": 12_345}, [])
    assert w.error == ""
    assert w.page["start"] == 617_250 and w.page["rows"][0][0] == "617250"
    assert len(json.dumps(w.page)) < 2 * len(before) + 1000  # a page costs about the same anywhere
    np.testing.assert_allclose(
        json.loads(w.page["rows"][0][1].replace(" [4]", "")), rb[617_250]["observation"].tolist(), rtol=1e-3)


def test_sample_highlights_indices_and_leaves_the_buffer_as_it_was():
    rb = ReplayBuffer(storage=LazyTensorStorage(200), sampler=SamplerWithoutReplacement(), batch_size=10)
    rb.extend(transitions(200))
    rb.set_seed(7)
    w = ReplayInspector(rb)
    idx = w.draw_sample(10)
    assert w.sample["indices"] == idx and len(idx) == 10 and w.sample["unique"] == 10
    _, info = rb.sample(10, return_info=True)  # training's next batch is the one it would have been
    twin = ReplayBuffer(storage=LazyTensorStorage(200), sampler=SamplerWithoutReplacement(), batch_size=10)
    twin.extend(transitions(200))
    twin.set_seed(7)
    _, twin_info = twin.sample(10, return_info=True)
    assert info["index"].tolist() == twin_info["index"].tolist() == idx


def test_prioritized_sample_reports_weights():
    rb = PrioritizedReplayBuffer(alpha=0.6, beta=0.4, storage=LazyTensorStorage(100))
    rb.extend(transitions(100))
    rb.update_priority(torch.arange(100), torch.rand(100) + 0.1)
    w = ReplayInspector(rb)
    w._on_msg(w, {"type": "sample", "batch_size": 16}, [])
    assert len(w.sample["indices"]) == 16 and 0 < w.sample["weights"]["min"] <= w.sample["weights"]["max"] <= 1.0


def test_messages_report_errors_in_the_view():
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    w = ReplayInspector(rb)  # empty: builds, shows an empty page
    assert w.page["rows"] == [] and w.summary["length"] == 0 and w.stats == []
    w._on_msg(w, {"type": "sample", "batch_size": 4}, [])
    assert w.error.startswith("EmptyBufferError: cannot sample from an empty ReplayBuffer")
    w._on_msg(w, {"type": "page", "page": 3}, [])
    assert "page 3 does not exist: the buffer holds 0 items" in w.error
    w._on_msg(w, {"type": "bogus"}, [])
    assert "unknown request 'bogus'; expected 'page', 'sample' or 'refresh'" in w.error
    assert w.title == "ReplayBuffer: 0 / 10 items"
    rb.extend(transitions(5))
    w._on_msg(w, {"type": "refresh"}, [])
    assert w.error == "" and w.summary["length"] == 5 and len(w.page["rows"]) == 5
    assert w.title == "ReplayBuffer: 5 / 10 items"
    assert ReplayInspector(rb, title="mine").title == "mine"


def test_bad_inputs():
    with pytest.raises(TypeError, match=r"expects a replay buffer .*; dict has no storage, sampler"):
        ReplayInspector({})
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    with pytest.raises(ValueError, match="page_size must be >= 1, got 0"):
        ReplayInspector(rb, page_size=0)
    rb.extend(transitions(3))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ReplayInspector(rb).draw_sample(0)


def test_evil_key_is_escaped_in_the_fallback():
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    rb.extend(TensorDict({EVIL: torch.ones(4)}, [4]))
    w = ReplayInspector(rb)
    html = w.summary_html()
    assert EVIL not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert w.page["columns"] == ["index", EVIL]  # raw in the data; the view shows it as text


def test_show_dispatches_to_the_replay_inspector():
    from rlbench.widgets import show

    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    rb.extend(transitions(3))
    assert type(show(rb)).__name__ == "ReplayInspector"
