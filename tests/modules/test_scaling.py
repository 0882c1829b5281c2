"""ScaleToBounds (rlbench/modules/scaling.py) against the formula computed in NumPy."""
import numpy as np
import torch

from rlbench.modules.scaling import ScaleToBounds


def test_matches_numpy_formula_per_dimension():
    low = np.array([-2.0, 0.0, 10.0])
    high = np.array([2.0, 1.0, 30.0])
    x = np.array([[-3.0, 0.5, 0.0], [0.0, -0.25, 4.0], [1.5, 20.0, -20.0]])
    expected = low + (np.tanh(x) + 1) / 2 * (high - low)
    squash = ScaleToBounds(torch.tensor(low), torch.tensor(high))
    out = squash(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert (out >= torch.tensor(low)).all() and (out <= torch.tensor(high)).all()
    np.testing.assert_allclose(squash(torch.zeros(3, dtype=torch.float64)).numpy(), (low + high) / 2)


def test_gradient_is_half_width_times_tanh_derivative():
    low, high = torch.tensor([-1.0, 0.0]), torch.tensor([3.0, 0.5])
    x = torch.tensor([0.3, -1.2], requires_grad=True)
    ScaleToBounds(low, high)(x).sum().backward()
    expected = (high - low).numpy() / 2 * (1 - np.tanh(np.array([0.3, -1.2], dtype=np.float32)) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_bounds_are_saved_buffers_not_parameters():
    squash = ScaleToBounds(torch.tensor([-2.0]), torch.tensor([4.0]))
    assert list(squash.parameters()) == []
    state = squash.state_dict()
    assert set(state) == {"center", "half_width"}
    assert state["center"].tolist() == [1.0] and state["half_width"].tolist() == [3.0]
    other = ScaleToBounds(torch.tensor([0.0]), torch.tensor([1.0]))
    other.load_state_dict(state)
    torch.testing.assert_close(other(torch.tensor([0.0, 100.0])), torch.tensor([1.0, 4.0]))
