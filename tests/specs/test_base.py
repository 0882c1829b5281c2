"""Tests of rlbench.specs.base: the Spec protocol, its leaf machinery on every leaf class, properties.

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

from .factories import ALL, FACTORIES, _member_ok

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------ the protocol
def test_every_spec_is_a_spec_and_composite_is_the_only_group():
    leaves = [make((2,)) for make in FACTORIES.values()]
    group = Composite(observation=leaves[0], shape=(2,))
    assert all(isinstance(s, Spec) for s in (*leaves, group))
    assert [isinstance(s, Composite) for s in (*leaves, group)] == [False] * len(leaves) + [True]
    for spec in (*leaves, group):  # the shared questions, answered by members of each kind
        assert spec.ndim == len(spec.shape) and spec.device == torch.device("cpu")
        assert spec.is_in(spec.rand()) and spec.is_in(spec.zero()) and spec.mismatch(spec.rand()) is None
        assert spec.expand(3, *spec.shape).shape == (3, *spec.shape)
        assert spec.clone() == spec and spec.to("cpu") == spec


def test_specs_are_unhashable_as_they_compare_by_value():
    for spec in (Unbounded((2,)), Composite(observation=Unbounded((2,)))):
        assert spec == spec.clone()  # equal values ...
        with pytest.raises(TypeError, match="unhashable"):  # ... so no identity hash that would differ
            hash(spec)
        with pytest.raises(TypeError):
            {spec: 1}


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
