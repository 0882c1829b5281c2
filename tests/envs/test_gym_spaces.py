"""Gymnasium space <-> spec mapping (rlbench/envs/gym_spaces.py): leaf kinds, start offsets, nesting, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlbench.envs.gym_spaces import numpy_to_torch, space_to_spec, torch_to_numpy
from rlbench.specs import (
    Binary,
    Bounded,
    Categorical,
    Composite,
    MultiCategorical,
    MultiOneHot,
    OneHot,
    Unbounded,
)


def nested_space():
    """Nested Dict/Tuple of every leaf kind (the observation space of DictObsEnv in test_gym.py)."""
    return spaces.Dict({
        "pos": spaces.Box(-1.0, 1.0, (2,), np.float64),
        "inner": spaces.Dict({"k": spaces.Discrete(4, start=2), "m": spaces.MultiBinary(3)}),
        "tup": spaces.Tuple((spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.MultiDiscrete([2, 3]))),
    })


def test_box_specs():
    spec = space_to_spec(spaces.Box(-1.0, 2.0, (3,), np.float64), batch_size=(5,))
    assert isinstance(spec, Bounded) and spec.shape == (5, 3) and spec.dtype == torch.float32
    assert torch.all(spec.low == -1) and torch.all(spec.high == 2)
    spec = space_to_spec(spaces.Box(-np.inf, np.inf, (2, 2), np.float32))
    assert isinstance(spec, Unbounded) and spec.shape == (2, 2)
    half = space_to_spec(spaces.Box(np.array([0, -np.inf], np.float32), np.array([1, np.inf], np.float32)))
    assert isinstance(half, Bounded) and half.is_in(half.rand((50,)))
    img = space_to_spec(spaces.Box(0, 255, (4, 4, 3), np.uint8))
    assert isinstance(img, Bounded) and img.dtype == torch.uint8 and img.is_in(img.rand())


def test_discrete_specs_with_start_and_one_hot():
    space = spaces.Discrete(3, start=-1)
    spec = space_to_spec(space)
    assert isinstance(spec, Categorical) and spec.n == 3 and spec.shape == ()
    assert numpy_to_torch(np.int64(-1), spec, space).item() == 0  # spec counts from 0
    assert torch_to_numpy(torch.tensor(2), space) == 1
    one_hot = space_to_spec(space, batch_size=(2,), categorical_action_encoding=False)
    assert isinstance(one_hot, OneHot) and one_hot.shape == (2, 3)
    assert torch_to_numpy(torch.tensor([0, 1, 0]), space, OneHot(3)) == 0


def test_multi_discrete_and_binary_specs():
    space = spaces.MultiDiscrete([2, 5], start=[1, 1])
    spec = space_to_spec(space)
    assert isinstance(spec, MultiCategorical) and spec.nvec.tolist() == [2, 5]
    assert numpy_to_torch(np.array([2, 1]), spec, space).tolist() == [1, 0]
    assert torch_to_numpy(torch.tensor([1, 4]), space).tolist() == [2, 5]
    assert isinstance(space_to_spec(space, categorical_action_encoding=False), MultiOneHot)
    grid = space_to_spec(spaces.MultiDiscrete(np.full((2, 3), 4)))
    assert isinstance(grid, Categorical) and grid.shape == (2, 3) and grid.n == 4
    with pytest.raises(TypeError, match="2-d nvec"):
        space_to_spec(spaces.MultiDiscrete([[2, 3], [4, 5]]))
    binary = space_to_spec(spaces.MultiBinary(4), batch_size=(2,))
    assert isinstance(binary, Binary) and binary.shape == (2, 4) and binary.dtype == torch.int8
    assert space_to_spec(spaces.MultiBinary([2, 3])).shape == (2, 3)


def test_dict_and_tuple_specs_nest():
    space = nested_space()
    spec = space_to_spec(space, batch_size=(3,))
    assert isinstance(spec, Composite) and spec.shape == (3,)
    assert set(spec.keys(True, True)) == {"pos", ("inner", "k"), ("inner", "m"), ("tup", "0"), ("tup", "1")}
    assert spec["tup", "1"].shape == (3, 2)
    space.seed(0)
    for _ in range(20):  # every sample of the space converts into a member of the spec
        value = space.sample()
        td = numpy_to_torch(value, space_to_spec(space), space)
        assert space_to_spec(space).is_in(td)
        back = torch_to_numpy(td, space)
        assert space.contains(back)


@pytest.mark.parametrize("space", [spaces.Text(5), spaces.Sequence(spaces.Discrete(2)), spaces.Graph(
    spaces.Box(0, 1, (1,)), None)], ids=["Text", "Sequence", "Graph"])
def test_unsupported_space_raises_a_clear_type_error(space):
    with pytest.raises(TypeError, match=rf"{type(space).__name__}.*supported spaces are Box, Discrete"):
        space_to_spec(space)
