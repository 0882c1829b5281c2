"""SpecInspector: tree contents, sampling, check_env_specs results, messages from the view."""
from __future__ import annotations

import pytest

pytest.importorskip("anywidget")

from rlbench.envs import CartPoleEnv, check_env_specs  # noqa: E402
from rlbench.specs import Bounded, Categorical, Composite, Unbounded  # noqa: E402
from rlbench.testing import CountingEnv  # noqa: E402
from rlbench.widgets import SpecInspector  # noqa: E402


def find(node, key):
    if node["key"] == key:
        return node
    for child in node.get("children", []):
        hit = find(child, key)
        if hit:
            return hit
    return None


def test_tree_describes_every_spec_of_an_env():
    env = CartPoleEnv()
    w = SpecInspector(env)
    groups = {g["name"]: g["node"] for g in w.groups}
    assert list(groups) == ["observation_spec", "action_spec", "reward_spec", "done_spec", "state_spec"]
    obs = find(groups["observation_spec"], "observation")
    assert obs == {"key": "observation", "kind": "Bounded", "shape": [4], "device": "cpu", "dtype": "float32",
                   "detail": env.observation_spec["observation"]._extra_repr()}
    assert "4.8" in obs["detail"] and "-inf" in obs["detail"]
    assert groups["action_spec"]["kind"] == "Categorical" and groups["action_spec"]["detail"] == "n=2"
    assert [c["key"] for c in groups["done_spec"]["children"]] == ["done", "terminated", "truncated"]
    assert w.title == "CartPoleEnv" and w.can_check and w.batch_size == []


def test_batched_env_and_nested_composite():
    env = CountingEnv(batch_size=[3])
    w = SpecInspector(env)
    assert w.batch_size == [3]
    assert find(w.groups[0]["node"], "observation")["shape"] == [3, 1]
    spec = Composite({"agent": Composite(pos=Bounded(-1.0, 1.0, shape=(2,)))})
    nested = SpecInspector(spec)
    node = nested.groups[0]["node"]
    assert node["kind"] == "Composite" and find(node, "agent")["children"][0]["key"] == "pos"
    assert not nested.can_check and nested.title == "Composite"


def test_sample_values_are_members_of_the_spec():
    w = SpecInspector(Categorical(5, shape=(3,)))
    result = w.draw_sample()
    assert w.sample == result and result["status"] == "ok"
    (row,) = result["rows"]
    values = [int(v) for v in row["value"].removeprefix("tensor([").removesuffix("])").split(",")]
    assert len(values) == 3 and all(0 <= v < 5 for v in values)
    assert row["shape"] == [3] and row["dtype"] == "int64"


def test_long_sample_reprs_are_cut():
    w = SpecInspector(Unbounded((900,)))
    (row,) = w.draw_sample()["rows"]
    assert len(row["value"]) <= 400 and row["value"].endswith("…")


def test_check_passes_on_a_good_env():
    w = SpecInspector(CartPoleEnv())
    assert w.run_check() == {"status": "ok", "mismatches": [], "steps": 3}


def test_check_shows_each_mismatch_like_check_env_specs():
    env = CountingEnv()
    env.observation_spec["observation"] = Unbounded((2,))  # the env returns shape (1,)
    w = SpecInspector(env)
    result = w.run_check()
    expected = check_env_specs(CountingEnv(), raise_error=False)
    assert expected == []  # the unmodified env is fine: the mismatch comes from the edit
    assert result["status"] == "mismatch"
    keys = {(m["key"], m["problem"]) for m in result["mismatches"]}
    assert ("observation", "shape") in keys and ("next.observation", "shape") in keys
    m = next(m for m in result["mismatches"] if m["key"] == "observation")
    assert m["expected"] == "shape (2,)" and m["got"] == "shape (1,)" and "Unbounded(shape=(1,))" in m["hint"]


def test_check_reports_a_crashing_env_as_text():
    class Broken(CountingEnv):
        def _step(self, td):
            raise RuntimeError("physics exploded")

    result = SpecInspector(Broken()).run_check()
    assert result == {"status": "error", "message": "RuntimeError: physics exploded"}


def test_check_on_a_spec_is_unavailable():
    result = SpecInspector(Unbounded(())).run_check()
    assert result["status"] == "unavailable" and "needs an env" in result["message"]


def test_front_end_messages_drive_the_buttons():
    w = SpecInspector(CartPoleEnv())
    w._on_front_end_msg(w, {"type": "sample"}, [])
    assert w.sample["status"] == "ok"
    w._on_front_end_msg(w, {"type": "check"}, [])
    assert w.check["status"] == "ok"
    w._on_front_end_msg(w, {"type": "nonsense"}, [])  # ignored
    w._on_front_end_msg(w, "garbage", [])


def test_rejects_other_objects():
    expected = r"SpecInspector: expected an rlbench env \(EnvBase\) or a spec .* got builtins.dict"
    with pytest.raises(TypeError, match=expected):
        SpecInspector({"a": 1})


def test_summary_lists_leaves():
    rows = dict(SpecInspector(CartPoleEnv())._summary_rows())
    assert rows["action_spec"] == "Categorical shape=() dtype=int64 n=2"
    assert rows["observation_spec[observation]"].startswith("Bounded shape=(4,) dtype=float32 low=")
