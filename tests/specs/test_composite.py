"""Tests of rlbench.specs.composite: Composite, the nested spec of a TensorDict."""
from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from rlbench.specs import Binary, Bounded, Categorical, Composite, Unbounded


def _nested():
    return Composite(
        observation=Unbounded((4, 3)),
        action=Categorical(2, (4,)),
        agent=Composite(pos=Bounded(-1.0, 1.0, (4, 2)), info=Composite(flag=Binary(1, (4, 1)), shape=(4,)), shape=(4,)),
        shape=(4,),
    )


class TestComposite:
    def test_nested_keys_and_getitem(self):
        spec = _nested()
        assert spec["agent", "pos"] is spec[("agent", "pos")] is spec["agent"]["pos"]
        assert spec["agent", "info", "flag"].shape == (4, 1)
        assert spec.keys() == ["observation", "action", "agent"]
        assert spec.keys(include_nested=True, leaves_only=True) == [
            "observation", "action", ("agent", "pos"), ("agent", "info", "flag")]
        assert ("agent", "info") in spec.keys(include_nested=True)
        assert ("agent", "info") not in spec.keys(include_nested=True, leaves_only=True)
        assert ("agent", "pos") in spec and ("agent", "nope") not in spec and "nope" not in spec
        assert len(spec) == 3 and list(spec) == ["observation", "action", "agent"]
        assert [k for k, _ in spec.items(True, True)] == spec.keys(True, True)
        assert spec.values()[0] is spec["observation"]
        assert spec.get("nope") is None

    def test_getitem_errors(self):
        spec = _nested()
        with pytest.raises(KeyError, match=r"no spec under key 'nope'; available keys: \['action', 'agent', "
                                           r"'observation'\]"):
            spec["nope"]
        with pytest.raises(KeyError, match="'observation' is a leaf spec"):
            spec["observation", "x"]
        with pytest.raises(KeyError, match="strings or tuples of strings"):
            spec[3]

    def test_setitem_creates_intermediate_composites(self):
        spec = Composite(shape=(2,))
        spec["a", "b", "c"] = Unbounded((2, 5))
        assert isinstance(spec["a"], Composite) and isinstance(spec["a", "b"], Composite)
        assert spec["a", "b"].shape == (2,)
        assert spec["a", "b", "c"].shape == (2, 5)
        spec["d"] = {"e": Unbounded((2,))}  # a dict becomes a Composite
        assert isinstance(spec["d"], Composite) and spec["d", "e"].shape == (2,)
        with pytest.raises(KeyError, match="holds a leaf spec"):
            spec["a", "b", "c", "d"] = Unbounded((2,))
        with pytest.raises(TypeError, match="must be a Spec or Composite, got int"):
            spec["x"] = 3

    def test_batch_shape_validation(self):
        spec = Composite(shape=(4,))
        with pytest.raises(ValueError, match=r"entry 'obs' has shape \(3,\), which does not start with the "
                                             r"Composite's batch shape \(4,\); expand it first, e.g. "
                                             r"spec.expand\(\(4, 3\)\)"):
            spec["obs"] = Unbounded((3,))
        with pytest.raises(ValueError, match="does not start with"):
            Composite(obs=Unbounded((3,)), shape=(4,))

    def test_delitem(self):
        spec = _nested()
        del spec["agent", "info", "flag"]
        assert ("agent", "info", "flag") not in spec
        del spec["action"]
        assert "action" not in spec
        with pytest.raises(KeyError, match="no spec under key 'action' to delete"):
            del spec["action"]

    def test_rand_zero_is_in(self):
        spec = _nested()
        for td in (spec.rand(), spec.zero(), spec.rand((5,)), spec.zero((2, 3))):
            assert spec.is_in(td), spec.mismatch(td)
        td = spec.rand((5,))
        assert td.batch_size == (5, 4) and td["agent", "info", "flag"].shape == (5, 4, 1)
        assert td["agent"].batch_size == (5, 4)

    def test_is_in_time_dim(self):
        spec = _nested()
        td = spec.rand((7,)).transpose(0, 1)  # [4, 7]: a rollout of a [4]-batched env
        assert spec.is_in(td), spec.mismatch(td)

    def test_mismatches_messages(self):
        spec = _nested()
        td = spec.rand()
        td["agent", "pos"] = torch.full((4, 2), 3.0)
        td["observation"] = torch.zeros(4, 3, dtype=torch.float64)
        del td["action"]
        found = spec.mismatches(td)
        assert found[0] == "key 'observation': expected dtype torch.float32, got torch.float64"
        assert found[1].startswith("key 'action': missing from the data (expected Categorical(shape=(4,), n=2")
        assert found[2] == "key ('agent', 'pos'): values outside [-1, 1], e.g. [3.0, 3.0, 3.0]"
        assert spec.mismatch(td) == "\n".join(found)
        assert not spec.is_in(td)

    def test_mismatch_batch_size_and_type(self):
        spec = _nested()
        assert spec.mismatches(TensorDict({}, [3])) == [
            "the data: expected batch size (4,) (optionally with extra dims inserted), got batch size (3,)"]
        assert spec.mismatches({"observation": 1}) == ["the data: expected a TensorDict, got dict"]
        td = spec.rand()
        td["agent"] = torch.zeros(4)
        assert "key 'agent': expected a nested TensorDict, got Tensor" in spec.mismatches(td)

    def test_extra_keys_allowed(self):
        spec = _nested()
        td = spec.rand().set("extra", torch.zeros(4))
        assert spec.is_in(td)

    def test_project_nested(self):
        spec = _nested()
        td = spec.rand()
        td["agent", "pos"] = torch.full((4, 2), math.nan)
        td["action"] = torch.full((4,), 9)
        out = spec.project(td)
        assert spec.is_in(out)
        assert out["action"].tolist() == [1] * 4
        assert torch.isnan(td["agent", "pos"]).all()  # the input is not modified

    def test_expand(self):
        spec = _nested()
        big = spec.expand(2, 4)
        assert big.shape == (2, 4)
        assert big["agent", "info", "flag"].shape == (2, 4, 1) and big["agent"].shape == (2, 4)
        assert spec.expand(2, -1) == big and spec.expand((2, 4)) == big
        assert big.is_in(big.rand())
        with pytest.raises(ValueError, match=r"cannot expand a Composite of shape \(4,\) to \(2, 3\)"):
            spec.expand(2, 3)
        with pytest.raises(ValueError, match="-1 is only allowed over existing dims"):
            spec.expand(-1, 4)
        with pytest.raises(ValueError, match="must end with"):
            spec.expand(())

    def test_select_exclude_update(self):
        spec = _nested()
        sel = spec.select("observation", ("agent", "pos"))
        assert sel.keys(True, True) == ["observation", ("agent", "pos")]
        assert sel["observation"] is spec["observation"]
        exc = spec.exclude("action", ("agent", "info"), "absent")
        assert exc.keys(True, True) == ["observation", ("agent", "pos")]
        assert "action" in spec  # exclude copies
        spec2 = Composite(shape=(4,))
        assert spec2.update(sel) is spec2 and spec2.keys(True, True) == sel.keys(True, True)
        spec2.update({"reward": Unbounded((4, 1))})
        assert spec2["reward"].shape == (4, 1)
        with pytest.raises(KeyError):
            spec.select("absent")
        assert spec.empty().shape == spec.shape and len(spec.empty()) == 0

    def test_clone_to_equality(self):
        spec = _nested()
        c = spec.clone()
        assert c == spec and c["agent", "pos"] is not spec["agent", "pos"]
        assert spec.to("cpu") == spec
        assert spec != spec.exclude("action")
        c["observation"] = Unbounded((4, 3), dtype=torch.float64)
        assert c != spec
        assert Composite(shape=(4,)) != Composite(shape=(3,))
        assert Composite(a=Unbounded(())) != Composite(b=Unbounded(()))
        assert spec != "spec"

    def test_repr(self):
        r = repr(_nested())
        assert r.startswith("Composite(shape=(4,), device=cpu\n    observation: Unbounded(shape=(4, 3)")
        assert "        pos: Bounded(shape=(4, 2), low=-1, high=1, dtype=float32, device=cpu)" in r

    def test_empty_composite(self):
        spec = Composite(shape=(2,))
        assert spec.rand().batch_size == (2,) and spec.is_in(TensorDict({}, [2]))
