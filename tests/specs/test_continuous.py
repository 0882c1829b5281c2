"""Tests of rlbench.specs.continuous: Unbounded and Bounded."""
from __future__ import annotations

import math

import pytest
import torch

from rlbench.specs import Bounded, Unbounded

from .factories import _bounded, _member_ok


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
