"""TorchRL's spellings on specs: ``Spec.unbatched`` (behind an env's ``*_spec_unbatched``) and ``Bounded.space``."""
from __future__ import annotations

import pytest
import torch

from rlbench.specs import Bounded, Composite, Unbounded


def test_spec_unbatched_method():
    spec = Bounded(-torch.ones(3), torch.arange(1.0, 4.0), (3,)).expand(5, 3)
    assert spec.unbatched(1) == Bounded(-torch.ones(3), torch.arange(1.0, 4.0), (3,))
    with pytest.raises(ValueError, match="differ"):
        Bounded(torch.zeros(2, 1), torch.tensor([[1.0], [2.0]]), (2, 1)).unbatched(1)
    assert Composite(a=Unbounded((2, 3)), shape=(2,)).unbatched(1) == Composite(a=Unbounded((3,)))
    with pytest.raises(ValueError, match="dims"):
        Unbounded((2,)).unbatched(2)


def test_bounded_space_low_high():
    spec = Bounded(-1.0, torch.tensor([1.0, 2.0]), (2,))
    assert torch.equal(spec.space.low, torch.tensor([-1.0, -1.0]))
    assert torch.equal(spec.space.high, torch.tensor([1.0, 2.0]))
    low, high = spec.space  # unpacks like a pair
    assert torch.equal(low, spec.low) and torch.equal(high, spec.high)
