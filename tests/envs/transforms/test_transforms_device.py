"""DeviceCastTransform: data and specs on the target device, actions back on the env's device."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import DeviceCastTransform as FromEnvs
from rlbench.envs import check_env_specs
from rlbench.envs.transforms import DeviceCastTransform, TransformedEnv
from rlbench.testing import ContinuousCountingEnv, CountingEnv

CPU = torch.device("cpu")


def test_exported_from_envs():
    assert FromEnvs is DeviceCastTransform


def test_cpu_to_cpu_keeps_values_and_declares_specs_on_the_device():
    base, env = CountingEnv(max_steps=5), TransformedEnv(CountingEnv(max_steps=5), DeviceCastTransform("cpu"))
    for spec in (env.observation_spec, env.reward_spec, env.done_spec, env.action_spec, env.state_spec):
        assert spec.device == CPU
    assert env.observation_spec["observation"].device == CPU
    data, ref = env.rollout(4), base.rollout(4)
    assert data["next", "observation"].squeeze(-1).tolist() == [1.0, 2.0, 3.0, 4.0]
    for key in (("next", "observation"), ("next", "reward"), ("next", "done"), "observation"):
        torch.testing.assert_close(data[key], ref[key])
    assert check_env_specs(env) == []


def test_orig_device_defaults_to_the_env_device_and_inverse_moves_there():
    t = DeviceCastTransform("cpu")
    assert t.orig_device is None
    TransformedEnv(ContinuousCountingEnv(), t)
    assert t._target_inv == CPU
    out = t.inv(TensorDict(action=torch.ones(1)))
    assert out["action"].device == CPU and out["action"].tolist() == [1.0]
    assert DeviceCastTransform("cpu", "cpu").orig_device == CPU


def test_forward_moves_root_and_next():
    td = TensorDict({"observation": torch.ones(2), "next": {"observation": torch.zeros(2)}}, [])
    out = DeviceCastTransform("cpu")(td)
    assert out["next", "observation"].device == CPU and out["observation"].tolist() == [1.0, 1.0]


def test_repr():
    assert repr(DeviceCastTransform("cpu", "cpu")) == "DeviceCastTransform(device=cpu, orig_device=cpu)"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_outputs_and_specs_on_cuda_actions_back_on_cpu():
    cuda = torch.device("cuda:0")
    env = TransformedEnv(CountingEnv(max_steps=5, batch_size=[2]), DeviceCastTransform(cuda))
    assert env.observation_spec["observation"].device == cuda and env.action_spec.device == cuda
    assert env.reward_spec.device == cuda and env.done_spec["done"].device == cuda
    td = env.reset()
    assert td["observation"].device.type == "cuda"
    td = env.rand_step(td)
    assert td["next", "observation"].device.type == "cuda"
    assert td["next", "observation"].squeeze(-1).tolist() == [1.0, 1.0]
    assert env.transform[0].inv(td)["action"].device == CPU
    data = env.rollout(6, break_when_any_done=False)
    assert data["next", "reward"].device.type == "cuda"
    assert check_env_specs(env) == []
    assert env.device == cuda


def test_transformed_env_device_follows_a_transform_that_moves_the_data():
    # The env's device is where its specs (and so its data) live after the transforms: a transform that
    # declares another device (here a spec-only one, as no second device exists on a CPU machine) moves it.
    from rlbench.envs.transforms import Transform

    class DeclareMeta(Transform):
        def transform_specs(self, specs):
            specs.device = torch.device("meta")
            return specs

    base = CountingEnv(max_steps=5)
    env = TransformedEnv(base, DeviceCastTransform("cpu"))
    assert env.device == CPU
    env.append_transform(DeclareMeta())
    assert env.device == torch.device("meta") and base.device == CPU
