"""Tests of rlbench.specs: every leaf spec, Composite, and property tests of the membership contract.

The property tests check, for random shapes, bounds and dtypes, that ``rand``, ``zero`` and ``project``
always return members of the spec, ``project`` even for hostile inputs (NaN, +-inf, huge, negative,
floats for integer specs).
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensordict import TensorDict

from rlbench.specs import (
    Binary,
    Bounded,
    Categorical,
    Composite,
    MultiCategorical,
    MultiOneHot,
    OneHot,
    Spec,
    Unbounded,
)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# One factory per spec class, each building a spec of batch shape ``batch``. Shared by the generic tests.
def _unbounded(batch=()):
    return Unbounded((*batch, 3))


def _bounded(batch=()):
    return Bounded(torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([1.0, 5.0, 3.0]), (*batch, 3))


def _bounded_int(batch=()):
    return Bounded(-2, 7, (*batch, 2), dtype=torch.int32)


def _categorical(batch=()):
    return Categorical(4, batch)


def _onehot(batch=()):
    return OneHot(4, (*batch, 4))


def _binary(batch=()):
    return Binary(3, (*batch, 3))


def _multicat(batch=()):
    return MultiCategorical([2, 3, 4], (*batch, 3))


def _multionehot(batch=()):
    return MultiOneHot([2, 3], (*batch, 5))


FACTORIES = {
    "Unbounded": _unbounded,
    "Bounded": _bounded,
    "BoundedInt": _bounded_int,
    "Categorical": _categorical,
    "OneHot": _onehot,
    "Binary": _binary,
    "MultiCategorical": _multicat,
    "MultiOneHot": _multionehot,
}
EVENT_NDIM = {"Unbounded": 1, "Bounded": 1, "BoundedInt": 1, "Categorical": 0, "OneHot": 1, "Binary": 1,
              "MultiCategorical": 1, "MultiOneHot": 1}
ALL = pytest.mark.parametrize("name", list(FACTORIES))


def _member_ok(spec, x):
    why = spec.mismatch(x)
    assert why is None, f"{spec!r}: {why}"


# --------------------------------------------------------------------------- generic leaf behaviour
@ALL
def test_shape_dtype_device(name):
    spec = FACTORIES[name]((2,))
    assert spec.shape[0] == 2 and spec.ndim == len(spec.shape)
    assert isinstance(spec.dtype, torch.dtype)
    assert spec.device == torch.device("cpu")
    for x in (spec.rand(), spec.zero()):
        assert x.shape == spec.shape and x.dtype == spec.dtype and x.device == spec.device


@ALL
@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
def test_rand_zero_extra_leading_dims(name, lead):
    spec = FACTORIES[name]((2,))
    for x in (spec.rand(lead), spec.zero(lead)):
        assert x.shape == (*lead, *spec.shape)
        _member_ok(spec, x)
    assert spec.rand(5).shape == (5, *spec.shape)  # an int works as a shape too


@ALL
def test_is_in_rejects_wrong_dtype_with_message(name):
    spec = FACTORIES[name]()
    other = torch.float64 if spec.dtype != torch.float64 else torch.float32
    x = spec.zero().to(other)
    assert not spec.is_in(x)
    assert spec.mismatch(x) == f"expected dtype {spec.dtype}, got {other}"


@ALL
def test_is_in_rejects_wrong_shape_with_message(name):
    spec = FACTORIES[name]((2,))
    x = spec.zero()[:1]  # batch dim 1 instead of 2
    assert not spec.is_in(x)
    why = spec.mismatch(x)
    assert f"expected shape {tuple(spec.shape)}" in why and f"got {tuple(x.shape)}" in why


@ALL
def test_is_in_rejects_non_tensor(name):
    spec = FACTORIES[name]()
    assert spec.mismatch(spec.zero((2,)).tolist()) == "expected a torch.Tensor, got list"
    assert not spec.is_in(None)


@ALL
def test_inserted_time_dim_is_in(name):
    spec = FACTORIES[name]((4,))
    x = spec.rand((20,))  # [20, 4, ...]: leading extra dims
    assert spec.is_in(x)
    # a time dim between the batch dim and the event dims: [4, 20, ...]
    y = x.transpose(0, 1).contiguous()
    assert spec.is_in(y)


@ALL
def test_project_returns_members(name):
    spec = FACTORIES[name]((2,))
    x = torch.randn(7, *spec.shape) * 100
    p = spec.project(x)
    assert p.shape == x.shape and p.dtype == spec.dtype
    _member_ok(spec, p)
    assert torch.equal(spec.project(spec.zero()), spec.zero())  # members are fixed points


@ALL
def test_project_wrong_shape_raises(name):
    spec = FACTORIES[name]((2,))
    with pytest.raises(ValueError, match=r"project: expected shape \(2,.*got \(3, 9\)"):
        spec.project(torch.zeros(3, 9))


@ALL
def test_expand(name):
    spec = FACTORIES[name]()
    big = spec.expand(4, *spec.shape)
    assert big.shape == (4, *spec.shape) and type(big) is type(spec) and big.dtype == spec.dtype
    assert spec.expand((4, *spec.shape)) == big  # a single sequence works too
    assert spec.expand(torch.Size([4, *spec.shape])) == big
    assert spec.expand(4, *([-1] * spec.ndim)) == big  # -1 keeps an existing dim
    _member_ok(big, big.rand())
    assert big.expand(3, *big.shape).shape == (3, 4, *spec.shape)


@ALL
def test_expand_errors(name):
    spec = FACTORIES[name]((2,))
    with pytest.raises(ValueError, match="fewer dims"):
        spec.expand(*spec.shape[1:])
    with pytest.raises(ValueError, match="trailing dims must equal"):
        spec.expand(3, *spec.shape[:-1], 99)
    with pytest.raises(ValueError, match="-1 is only allowed over the spec's existing dims"):
        spec.expand(-1, *spec.shape)


@ALL
def test_to_clone_equality(name):
    spec = FACTORIES[name]((2,))
    assert spec.to("cpu") is spec
    c = spec.clone()
    assert c is not spec and c == spec and spec == c
    assert not (spec == FACTORIES[name]((3,)))  # shape differs
    assert spec != "not a spec" and spec != Composite()
    with pytest.raises(TypeError, match="unhashable"):  # equal by value and mutable: no hash (as gymnasium)
        hash(spec)


@ALL
def test_repr_readable(name):
    spec = FACTORIES[name]((2,))
    r = repr(spec)
    assert r.startswith(type(spec).__name__ + "(shape=(2,")
    assert f"dtype={str(spec.dtype)[6:]}" in r and "device=cpu" in r
    assert "torch." not in r and "tensor(" not in r


# ------------------------------------------------------------------------- per-class specifics
class TestUnbounded:
    def test_any_value_is_in(self):
        spec = Unbounded((2,))
        assert spec.is_in(torch.tensor([math.inf, -1e30]))
        assert spec.is_in(torch.tensor([math.nan, 0.0]))

    def test_dtypes(self):
        for dtype in (torch.float64, torch.int64, torch.int8, torch.uint8, torch.bool):
            spec = Unbounded((3,), dtype=dtype)
            _member_ok(spec, spec.rand((10,)))
            assert spec.rand().dtype == dtype
        assert Unbounded(dtype=torch.uint8).rand((1000,)).min() >= 0

    def test_project_to_int_rounds_and_saturates(self):
        spec = Unbounded((4,), dtype=torch.int8)
        out = spec.project(torch.tensor([1.6, math.nan, 1e9, -math.inf]))
        assert out.tolist() == [2, 0, 127, -128]

    def test_equality_fields(self):
        assert Unbounded((2,)) != Unbounded((2,), dtype=torch.float64)
        assert Unbounded((2,)) != Unbounded((3,))
        assert Unbounded((2,)) != Unbounded((2,), device="meta")


class TestBounded:
    def test_shape_from_bounds_and_dtype_inference(self):
        spec = Bounded(torch.zeros(3), torch.ones(3))
        assert spec.shape == (3,) and spec.dtype == torch.float32
        assert Bounded(0, 1).dtype == torch.float32
        assert Bounded(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)).dtype == torch.float64
        assert Bounded(torch.tensor([0, 0]), torch.tensor([3, 3])).dtype == torch.int64

    def test_values_outside_message(self):
        spec = Bounded(-1.0, 1.0, (2,))
        why = spec.mismatch(torch.tensor([0.0, 3.0]))
        assert why == "values outside [-1, 1], e.g. [3.0]"
        assert "nan" in spec.mismatch(torch.tensor([math.nan, 0.0]))

    def test_per_element_bounds(self):
        spec = _bounded()
        assert spec.is_in(torch.tensor([0.0, 4.0, 2.5]))
        assert not spec.is_in(torch.tensor([0.0, 4.0, 1.0]))  # 1.0 < low[2] = 2
        assert "[-1, 0, 2]" in repr(spec)

    def test_per_element_bounds_with_extra_dims_anywhere(self):
        spec = Bounded(torch.tensor([[0.0, 0.0], [10.0, 10.0]]), torch.tensor([[1.0, 1.0], [11.0, 11.0]]))
        x = spec.rand((2,))  # [2, 2, 2]: the leading dim is the extra one, the shape alone is ambiguous
        assert spec.is_in(x)
        assert spec.is_in(x.permute(1, 0, 2))  # extra dim in the middle

    def test_project(self):
        spec = Bounded(-2.0, 2.0, (3,))
        assert spec.project(torch.tensor([5.0, -math.inf, math.nan])).tolist() == [2.0, -2.0, -2.0]
        half = Bounded(0.0, math.inf, (2,))
        assert half.project(torch.tensor([math.inf, -3.0])).tolist() == [math.inf, 0.0]
        assert Bounded(-math.inf, math.inf, (1,)).project(torch.tensor([math.nan])).tolist() == [0.0]

    def test_zero_outside_box_is_projected(self):
        spec = Bounded(1.0, 2.0, (2,))
        assert spec.zero().tolist() == [1.0, 1.0]
        assert spec.is_in(spec.zero((3,)))

    def test_integer_bounded(self):
        spec = Bounded(0.5, 2.5, (1000,), dtype=torch.int64)  # members: 1 and 2
        r = spec.rand()
        assert set(r.tolist()) == {1, 2}
        assert not spec.is_in(torch.zeros(1000, dtype=torch.int64))
        assert spec.project(torch.full((1000,), 0.2)).unique().tolist() == [1]
        with pytest.raises(ValueError, match="no torch.int64 value lies in"):
            Bounded(0.2, 0.8, dtype=torch.int64)

    def test_infinite_bounds_rand(self):
        spec = Bounded(torch.tensor([-math.inf, 0.0, -math.inf, 1.0]), torch.tensor([math.inf, math.inf, 0.0, 2.0]))
        x = spec.rand((500,))
        assert torch.isfinite(x).all() and spec.is_in(x)
        assert (x[:, 1] >= 0).all() and (x[:, 2] <= 0).all()

    def test_errors(self):
        with pytest.raises(ValueError, match="low must be <= high"):
            Bounded(1.0, 0.0)
        with pytest.raises(ValueError, match="must not be NaN"):
            Bounded(math.nan, 1.0)
        with pytest.raises(ValueError, match="do not broadcast to shape"):
            Bounded(torch.zeros(3), torch.ones(3), shape=(4,))
        with pytest.raises(TypeError, match="use Binary"):
            Bounded(0, 1, dtype=torch.bool)

    def test_equality_fields(self):
        a = Bounded(-1.0, 1.0, (2,))
        assert a == Bounded(-1.0, 1.0, (2,))
        assert a != Bounded(-1.0, 2.0, (2,))  # high
        assert a != Bounded(-2.0, 1.0, (2,))  # low
        assert a != Bounded(-1.0, 1.0, (3,))  # shape
        assert a != Bounded(-1.0, 1.0, (2,), dtype=torch.float64)  # dtype
        moved = a.clone()
        moved.device = torch.device("meta")  # (no second real device on a CPU-only machine)
        assert a != moved  # device
        assert a != Unbounded((2,))  # type

    def test_expand_keeps_per_element_bounds(self):
        spec = _bounded().expand(4, 3)
        assert spec.low.shape == (4, 3) and spec.low[2].tolist() == [-1.0, 0.0, 2.0]


class TestCategorical:
    def test_values_and_message(self):
        spec = Categorical(3, (2,))
        assert spec.is_in(torch.tensor([0, 2]))
        assert spec.mismatch(torch.tensor([0, 3])) == "values outside {0, ..., 2}, e.g. [3]"
        assert spec.mismatch(torch.tensor([-1, 0])) == "values outside {0, ..., 2}, e.g. [-1]"

    def test_project(self):
        spec = Categorical(3, (6,))
        x = torch.tensor([-5.0, 0.4, 1.6, math.nan, math.inf, -math.inf])
        assert spec.project(x).tolist() == [0, 0, 2, 0, 2, 0]
        assert spec.project(torch.tensor([True, False, True, True, False, False])).tolist() == [1, 0, 1, 1, 0, 0]

    def test_one_hot(self):
        assert Categorical(3).to_one_hot(torch.tensor([2, 0])).tolist() == [[False, False, True], [True, False, False]]

    def test_dtype_and_errors(self):
        spec = Categorical(5, (4,), dtype=torch.int8)
        assert spec.rand().dtype == torch.int8 and spec.is_in(spec.rand((3,)))
        with pytest.raises(ValueError, match="n >= 1"):
            Categorical(0)
        with pytest.raises(TypeError, match="integer dtype"):
            Categorical(3, dtype=torch.float32)
        with pytest.raises(ValueError, match="do not fit in torch.int8"):
            Categorical(1000, dtype=torch.int8)

    def test_equality_fields(self):
        assert Categorical(3) != Categorical(4)
        assert Categorical(3) != Categorical(3, (1,))
        assert Categorical(3) != Categorical(3, dtype=torch.int32)
        assert Categorical(3) == Categorical(3)


class TestOneHot:
    def test_values_and_message(self):
        spec = OneHot(3)
        assert spec.is_in(torch.tensor([False, True, False]))
        why = spec.mismatch(torch.tensor([True, True, False]))
        assert why.startswith("not one-hot") and "[True, True, False]" in why
        assert not spec.is_in(torch.tensor([False, False, False]))

    def test_project_argmax(self):
        spec = OneHot(3)
        assert spec.project(torch.tensor([0.1, 0.7, 0.2])).tolist() == [False, True, False]
        assert spec.project(torch.tensor([math.nan, -1.0, math.nan])).tolist() == [False, True, False]
        assert spec.project(torch.full((3,), math.nan)).sum() == 1

    def test_no_extra_dims_after_the_event_dim(self):
        spec = OneHot(3)
        x = spec.rand((3,))  # [3, 3]
        assert spec.is_in(x)
        y = torch.zeros(3, 5, dtype=torch.bool)  # [3, 5]: extra dim after the categories
        assert "before the last dim" in spec.mismatch(y)

    def test_categorical_round_trip(self):
        spec = OneHot(4)
        x = spec.rand((10,))
        assert torch.equal(torch.nn.functional.one_hot(spec.to_categorical(x), 4).bool(), x)

    def test_errors_and_equality(self):
        with pytest.raises(ValueError, match="last dim of shape must be n=3"):
            OneHot(3, (2, 4))
        assert OneHot(3) != OneHot(4)
        assert OneHot(3) != OneHot(3, dtype=torch.int64)
        assert OneHot(3, dtype=torch.float32).zero().tolist() == [1.0, 0.0, 0.0]


class TestBinary:
    def test_values_and_message(self):
        spec = Binary(3)
        assert spec.is_in(torch.tensor([0, 1, 1], dtype=torch.int8))
        assert spec.mismatch(torch.tensor([0, 2, 1], dtype=torch.int8)) == "values other than 0 and 1, e.g. [2]"

    def test_project(self):
        spec = Binary(4)
        assert spec.project(torch.tensor([0.4, 0.6, math.nan, math.inf])).tolist() == [0, 1, 0, 1]
        assert spec.project(torch.tensor([-3, 0, 2, 1])).tolist() == [0, 0, 1, 1]

    def test_bool_dtype_and_equality(self):
        spec = Binary(2, dtype=torch.bool)
        assert spec.rand().dtype == torch.bool and spec.is_in(spec.rand((5,)))
        assert Binary(2) != Binary(3)
        assert Binary(2) != spec
        with pytest.raises(ValueError, match="last dim of shape must be n=2"):
            Binary(2, (3,))


class TestMultiCategorical:
    def test_values_and_message(self):
        spec = MultiCategorical([2, 3])
        assert spec.is_in(torch.tensor([1, 2]))
        assert spec.mismatch(torch.tensor([2, 0])) == "values outside [0, nvec) with nvec=[2, 3], e.g. [2]"

    def test_project(self):
        spec = MultiCategorical([2, 3])
        assert spec.project(torch.tensor([5, 5])).tolist() == [1, 2]
        assert spec.project(torch.tensor([1e30, -1e30])).tolist() == [1, 0]  # no int64 overflow
        assert spec.project(torch.tensor([math.inf, math.nan])).tolist() == [1, 0]

    def test_rand_covers_all_values(self):
        x = MultiCategorical([2, 3]).rand((500,))
        assert x[:, 0].unique().tolist() == [0, 1] and x[:, 1].unique().tolist() == [0, 1, 2]

    def test_errors_and_equality(self):
        with pytest.raises(ValueError, match="every nvec entry >= 1"):
            MultiCategorical([2, 0])
        with pytest.raises(ValueError, match=r"len\(nvec\)=2"):
            MultiCategorical([2, 3], (3,))
        with pytest.raises(TypeError, match="integer dtype"):
            MultiCategorical([2, 3], dtype=torch.float32)
        assert MultiCategorical([2, 3]) != MultiCategorical([3, 2])
        assert MultiCategorical([2, 3]) == MultiCategorical([2, 3])


class TestMultiOneHot:
    def test_values_and_message(self):
        spec = MultiOneHot([2, 3])
        assert spec.is_in(torch.tensor([True, False, False, False, True]))
        why = spec.mismatch(torch.tensor([True, False, True, True, False]))
        assert why.startswith("segment 1 (size 3) is not one-hot")

    def test_project_and_zero(self):
        spec = MultiOneHot([2, 3])
        assert spec.project(torch.tensor([0.0, 1.0, 5.0, math.nan, 4.0])).tolist() == [False, True, True, False, False]
        assert spec.zero().tolist() == [True, False, True, False, False]

    def test_errors_and_equality(self):
        with pytest.raises(ValueError, match="sum\\(nvec\\)=5"):
            MultiOneHot([2, 3], (4,))
        with pytest.raises(ValueError, match="non-empty nvec"):
            MultiOneHot([])
        assert MultiOneHot([2, 3]) != MultiOneHot([3, 2])


# ---------------------------------------------------------------------------------- Composite
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


# ------------------------------------------------------------------------------ property tests
shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)
lead_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
int_dtypes = st.sampled_from([torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])
float_dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16])
any_dtypes = st.sampled_from(
    [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool])
bound_values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -math.inf, math.inf, 3.4e38, -3.4e38, 1e300, -1e300, 0.5, -0.5]),
)


@st.composite
def bounded_specs(draw):
    shape = draw(shapes)
    dtype = draw(st.one_of(float_dtypes, int_dtypes))
    scalar = draw(st.booleans())
    n = int(torch.Size(shape).numel())
    size = 1 if scalar else n
    a = torch.tensor(draw(st.lists(bound_values, min_size=size, max_size=size)), dtype=torch.float64)
    b = torch.tensor(draw(st.lists(bound_values, min_size=size, max_size=size)), dtype=torch.float64)
    a, b = (a[0], b[0]) if scalar else (a.reshape(shape), b.reshape(shape))
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    if not dtype.is_floating_point:  # make sure an integer of the dtype lies in every box
        info = torch.iinfo(dtype)
        low = low.clamp(-1e18, 1e18).clamp(info.min, info.max).floor()
        high = torch.maximum(high.clamp(-1e18, 1e18).clamp(info.min, info.max).floor(), low)
    return Bounded(low, high, shape, dtype=dtype)


@st.composite
def leaf_specs(draw):
    kind = draw(st.sampled_from(["unbounded", "bounded", "categorical", "onehot", "binary", "multicat", "multionehot"]))
    batch = draw(shapes)
    if kind == "unbounded":
        return Unbounded(batch, dtype=draw(any_dtypes))
    if kind == "bounded":
        return draw(bounded_specs())
    if kind == "categorical":
        dtype = draw(int_dtypes)
        n = draw(st.integers(1, 100 if dtype in (torch.int8, torch.uint8) else 1000))
        return Categorical(n, batch, dtype=dtype)
    if kind == "onehot":
        n = draw(st.integers(1, 6))
        return OneHot(n, (*batch, n), dtype=draw(any_dtypes))
    if kind == "binary":
        n = draw(st.integers(1, 6))
        return Binary(n, (*batch, n), dtype=draw(any_dtypes))
    if kind == "multicat":
        nvec = draw(st.lists(st.integers(1, 100), min_size=1, max_size=4))
        return MultiCategorical(nvec, (*batch, len(nvec)), dtype=draw(st.sampled_from([torch.int64, torch.int32])))
    nvec = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    return MultiOneHot(nvec, (*batch, sum(nvec)), dtype=draw(any_dtypes))


hostile_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 3e38, -1.0, -1e9, 0.5, 2.5, 0.0, 1.0]),
    st.integers(-(2**62), 2**62),
)


@st.composite
def hostile_inputs(draw, spec: Spec):
    lead = draw(lead_shapes)
    shape = (*lead, *spec.shape)
    n = int(torch.Size(shape).numel())
    values = draw(st.lists(hostile_values, min_size=n, max_size=n))
    as_float = draw(st.booleans()) or any(isinstance(v, float) for v in values)
    dtype = draw(st.sampled_from([torch.float64, torch.float32, torch.float16])) if as_float else torch.int64
    with torch.no_grad():
        x = torch.tensor(values, dtype=torch.float64 if as_float else torch.int64)
    return x.to(dtype).reshape(shape)


@PROPS
@given(spec=leaf_specs(), lead=lead_shapes)
def test_prop_rand_and_zero_are_members(spec, lead):
    _member_ok(spec, spec.rand(lead))
    _member_ok(spec, spec.zero(lead))
    _member_ok(spec, spec.zero())
    assert spec.rand(lead).shape == (*lead, *spec.shape)


@PROPS
@given(data=st.data(), spec=leaf_specs())
def test_prop_project_any_input_is_member(data, spec):
    x = data.draw(hostile_inputs(spec))
    p = spec.project(x)
    assert p.shape == x.shape and p.dtype == spec.dtype
    _member_ok(spec, p)
    # projecting a member changes nothing
    assert torch.equal(spec.project(p), p) or (p.is_floating_point() and torch.isnan(p).any())


@PROPS
@given(spec=leaf_specs(), time=st.integers(1, 5))
def test_prop_inserted_time_dim_is_member(spec, time):
    batch = spec.shape[: max(spec.ndim - spec._event_ndim, 0)]
    big = spec
    if not batch:
        big = spec.expand(2, *spec.shape)
    x = big.rand((time,))  # [T, *batch, *event]
    x = x.movedim(0, 1)  # [b0, T, ...]: the time dim after the first batch dim
    _member_ok(big, x)


@PROPS
@given(spec=leaf_specs(), lead=st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple))
def test_prop_expand_preserves_membership(spec, lead):
    big = spec.expand(*lead, *([-1] * spec.ndim))
    assert big.shape == (*lead, *spec.shape)
    _member_ok(big, big.rand())
    _member_ok(spec, big.rand())  # an expanded spec's samples are in the original (extra leading dims)
    assert big.clone() == big


@PROPS
@given(spec=bounded_specs())
def test_prop_bounded_rand_within_bounds(spec):
    x = spec.rand((8,))
    if spec.dtype.is_floating_point:
        assert bool(((x >= spec.low) & (x <= spec.high)).all())
    else:
        assert bool(((x.double() >= spec.low.ceil()) & (x.double() <= spec.high.floor())).all())


def test_spec_membership_spec_4_1_data_4_20_1():
    for spec in (Unbounded((4, 1)), Bounded(-1.0, 1.0, (4, 1)), Categorical(3, (4, 1)), Binary(1, (4, 1))):
        x = spec.rand((20,)).transpose(0, 1)
        assert x.shape == (4, 20, 1) and spec.is_in(x), spec.mismatch(x)
        assert not spec.is_in(x[:3])  # batch dim 3 instead of 4
    # an event dim never gets extra dims after it
    assert not Binary(1, (4, 1)).is_in(torch.zeros(4, 1, 20, dtype=torch.int8))
