"""Spec factories and helpers shared by the spec tests."""
from __future__ import annotations

import pytest
import torch

from rlbench.specs import Binary, Bounded, Categorical, MultiCategorical, MultiOneHot, OneHot, Unbounded


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
