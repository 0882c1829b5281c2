"""Image transforms against independent computations (plain torch on the same data)."""
import torch
import torch.nn.functional as F
from tensordict import TensorDict

from rlbench.envs.transforms import (
    CatFrames,
    CenterCrop,
    Compose,
    GrayScale,
    Resize,
    ToTensorImage,
    TransformedEnv,
)
from rlbench.testing import CountingEnv, PixelCountingEnv


def _pixel_env(**kw):
    return PixelCountingEnv(height=8, width=10, **kw)


def test_to_tensor_image_values_and_spec():
    env = TransformedEnv(_pixel_env(), ToTensorImage())
    raw = _pixel_env().reset()["pixels"]
    out = env.reset()["pixels"]
    torch.testing.assert_close(out, raw.permute(2, 0, 1).float() / 255)
    spec = env.observation_spec["pixels"]
    assert spec.shape == (3, 8, 10) and spec.dtype == torch.float32
    assert float(spec.low.min()) == 0.0 and float(spec.high.max()) == 1.0


def test_resize_matches_interpolate_and_keeps_integer_dtype():
    env = TransformedEnv(_pixel_env(batch_size=[2]), Compose(ToTensorImage(), Resize(5, 4)))
    td = env.rollout(3)
    raw = TransformedEnv(_pixel_env(batch_size=[2]), ToTensorImage()).rollout(3)["next", "pixels"]
    expected = F.interpolate(raw.reshape(-1, 3, 8, 10), size=(4, 5), mode="bilinear", align_corners=False)
    torch.testing.assert_close(td["next", "pixels"], expected.reshape(2, 3, 3, 4, 5).clamp(0, 1))
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    out = Resize(4, interpolation="nearest")._apply_transform(x)
    assert out.dtype == torch.uint8 and torch.equal(out, F.interpolate(x.float(), size=(4, 4)).to(torch.uint8))


def test_grayscale_weights():
    x = torch.rand(4, 3, 5, 6)
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(GrayScale()._apply_transform(x), expected.unsqueeze(1))
    env = TransformedEnv(_pixel_env(), Compose(ToTensorImage(), GrayScale()))
    assert env.observation_spec["pixels"].shape == (1, 8, 10)


def test_center_crop_takes_the_middle_window():
    env = TransformedEnv(_pixel_env(), Compose(ToTensorImage(), CenterCrop(4, 2)))
    raw = TransformedEnv(_pixel_env(), ToTensorImage()).reset()["pixels"]
    out = env.reset()["pixels"]
    assert out.shape == (3, 2, 4)
    torch.testing.assert_close(out, raw[:, 3:5, 3:7])


def test_catframes_images_stack_channels():
    env = TransformedEnv(_pixel_env(max_steps=10), Compose(ToTensorImage(), CatFrames(3, dim=-3)))
    td = env.rollout(4)
    frames = TransformedEnv(_pixel_env(max_steps=10), ToTensorImage()).rollout(4)
    assert td["next", "pixels"].shape == (4, 9, 8, 10)
    # step 3: frames of steps 1, 2, 3 (next observations), oldest first
    expected = torch.cat([frames["next", "pixels"][1], frames["next", "pixels"][2], frames["next", "pixels"][3]], 0)
    torch.testing.assert_close(td["next", "pixels"][3], expected)
    # reset: three copies of the first frame
    torch.testing.assert_close(td["pixels"][0], frames["pixels"][0].repeat(3, 1, 1))


def test_catframes_partial_reset_refills_only_reset_sub_envs():
    env = TransformedEnv(CountingEnv(max_steps=torch.tensor([[2], [10]]), batch_size=[2]), CatFrames(4))
    td = env.rollout(4, break_when_any_done=False)
    # sub-env 0 resets after steps 2 and 4; sub-env 1 never does
    assert td["observation"][0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert td["observation"][1].tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 2, 3]]
    assert td["next", "observation"][0, 1].tolist() == [0, 0, 1, 2]  # the true final stack


def test_catframes_on_samples_without_history():
    td = TensorDict({"observation": torch.tensor([[1.0], [5.0]]),
                     "next": {"observation": torch.tensor([[2.0], [6.0]])}}, [2])
    out = CatFrames(3)(td)
    assert out["observation"].tolist() == [[1, 1, 1], [5, 5, 5]]
    assert out["next", "observation"].tolist() == [[1, 1, 2], [5, 5, 6]]


def test_catframes_on_trajectory_slices_starting_mid_episode():
    env = CountingEnv(max_steps=10)
    data = env.rollout(6)[2:]  # starts at count 2: padded with the slice's first frame
    out = CatFrames(3)(data.unsqueeze(0))
    assert out["observation"][0, 0].tolist() == [2, 2, 2]
    assert out["next", "observation"][0, 1].tolist() == [2, 3, 4]
