"""Tests of rlbench.specs.discrete: Categorical, OneHot, Binary, MultiCategorical and MultiOneHot."""
from __future__ import annotations

import math

import pytest
import torch

from rlbench.specs import Binary, Categorical, MultiCategorical, MultiOneHot, OneHot


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
