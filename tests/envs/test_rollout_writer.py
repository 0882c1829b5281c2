"""RolloutWriter (rlbench/envs/rollout_writer.py) against ``torch.stack`` of the steps, and its errors."""
import pytest
import torch
from tensordict import NonTensorData, TensorDict

from rlbench.envs.rollout_writer import RolloutWriter, empty_buffer


def step(t, batch=(3,)):
    """Small grouped entries (two of equal shape and dtype), a nested one, a big one, a flag and a note."""
    g = torch.Generator().manual_seed(t)
    return TensorDict({
        "observation": torch.randn(*batch, 4, generator=g),
        "action": torch.randn(*batch, 4, generator=g),  # same dtype/shape as observation: one shared buffer
        "pixels": torch.randint(0, 255, (*batch, 40, 40), generator=g, dtype=torch.uint8),  # > 1024 elements
        "next": {"reward": torch.full((*batch, 1), float(t)), "done": torch.zeros(*batch, 1, dtype=torch.bool)},
        "_reset": torch.ones(*batch, 1, dtype=torch.bool),
        "note": NonTensorData("hello", batch_size=batch),
    }, list(batch))


@pytest.mark.parametrize("batch", [(3,), (2, 2)])
@pytest.mark.parametrize("differentiable", [False, True])
def test_result_equals_stacking_the_steps(batch, differentiable):
    steps = [step(t, batch) for t in range(5)]
    writer = RolloutWriter(torch.Size(batch), max_steps=5, differentiable=differentiable)
    for t, td in enumerate(steps):
        writer.write(t, td)
    for n in (5, 3):
        out = writer.result(n)
        assert out.batch_size == (*batch, n)
        keys = {"observation", "action", "pixels", ("next", "reward"), ("next", "done")}
        assert set(out.keys(True, True)) == keys  # "_reset" and non-tensor entries are not recorded
        for key in keys:
            expected = torch.stack([td.get(key) for td in steps[:n]], len(batch))
            assert out.get(key).dtype == expected.dtype and torch.equal(out.get(key), expected), key


def test_a_rewritten_step_replaces_the_old_one():
    for differentiable in (False, True):
        writer = RolloutWriter(torch.Size([3]), max_steps=3, differentiable=differentiable)
        writer.write(0, step(0))
        writer.write(1, step(1))
        writer.write(1, step(7))
        assert writer.result(2)["next", "reward"][:, 1].flatten().tolist() == [7.0, 7.0, 7.0]


def test_differentiable_mode_carries_gradients_back_to_the_steps():
    x = torch.ones(2, 1, requires_grad=True)
    writer = RolloutWriter(torch.Size([2]), max_steps=3, differentiable=True)
    for t in range(3):
        writer.write(t, TensorDict({"y": x * (t + 1)}, [2]))
    writer.result(3)["y"].sum().backward()
    assert x.grad.flatten().tolist() == [6.0, 6.0]  # 1 + 2 + 3


def test_time_major_views_write_into_the_result():
    writer = RolloutWriter(torch.Size([3]), max_steps=4)
    writer.write(0, step(0))
    views = writer.time_major()  # keyed by full key tuples
    assert views[("observation",)].shape == (4, 3, 4) and views[("pixels",)].shape == (4, 3, 40, 40)
    views[("observation",)][2] = 5.0
    views[("pixels",)][3] = 9
    out = writer.result(4)
    assert (out["observation"][:, 2] == 5.0).all() and (out["pixels"][:, 3] == 9).all()


def test_errors_name_the_key_and_the_step():
    writer = RolloutWriter(torch.Size([3]), max_steps=4)
    writer.write(0, step(0))
    missing = step(1)
    del missing["next", "reward"]
    with pytest.raises(KeyError, match=r"key \('next', 'reward'\) was present at the first step but is missing "
                                       r"at step 1"):
        writer.write(1, missing)
    bad = step(2)
    bad["observation"] = torch.zeros(3, 5)
    with pytest.raises(ValueError, match=r"key 'observation' changed at step 2: the first step had shape \(3, 4\), "
                                         r"dtype torch.float32; now shape \(3, 5\), dtype torch.float32"):
        writer.write(2, bad)
    big = step(3)
    big["pixels"] = torch.zeros(3, 40, 41, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"key 'pixels' changed at step 3.*\(3, 40, 40\).*now shape \(3, 40, 41\)"):
        writer.write(3, big)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.uint8, torch.bfloat16])
def test_empty_buffer_is_an_ordinary_writable_tensor(dtype):
    buf = empty_buffer((5, 300, 4), dtype, torch.device("cpu"))
    assert buf.shape == (5, 300, 4) and buf.dtype == dtype and buf.is_contiguous() and buf.device.type == "cpu"
    src = torch.arange(5 * 4).reshape(5, 4).to(dtype)
    buf.select(1, 7).copy_(src)
    assert torch.equal(buf[:, 7], src)
    shared = buf.share_memory_()  # what multi-process collectors do with batches
    assert shared.is_shared() and torch.equal(shared[:, 7], src)
