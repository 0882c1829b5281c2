"""Modules driving real envs through a Collector (the integration the losses build on)."""
import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn

from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv, GymEnv
from rlbench.modules import MLP, ProbabilisticActor, QValueActor, TanhNormal, ValueOperator


def test_qvalue_actor_in_collector_cartpole():
    env = CartPoleEnv(batch_size=[4])
    actor = QValueActor(MLP(out_features=2, num_cells=[16]), spec=env.action_spec)
    collector = Collector(env, actor, frames_per_batch=32, total_frames=64)
    batches = list(collector)
    collector.shutdown()
    assert len(batches) == 2
    b = batches[-1]
    assert b.shape == (4, 8)
    assert env.action_spec.is_in(b["action"])
    # the stored action is the argmax of the stored Q-values
    assert torch.equal(b["action"], b["action_value"].argmax(-1))


def test_probabilistic_actor_in_collector_pendulum():
    env = GymEnv("Pendulum-v1")
    spec = env.action_spec
    net = TensorDictModule(nn.Sequential(MLP(out_features=2, num_cells=[16]), NormalParamExtractor()),
                           ["observation"], ["loc", "scale"])
    actor = ProbabilisticActor(net, in_keys=["loc", "scale"], spec=spec, safe=True, distribution_class=TanhNormal,
                               distribution_kwargs={"low": spec.low, "high": spec.high}, return_log_prob=True)
    critic = ValueOperator(MLP(out_features=1, num_cells=[16]))
    collector = Collector(env, actor, frames_per_batch=20, total_frames=20)
    (batch,) = list(collector)
    collector.shutdown()
    env.close()
    assert batch.shape == (20,)
    assert spec.is_in(batch["action"]) and batch["action"].std() > 0
    lp = actor.get_dist(batch).log_prob(batch["action"])
    torch.testing.assert_close(lp, batch["sample_log_prob"], rtol=1e-4, atol=1e-4)
    assert critic(batch)["state_value"].shape == (20, 1)
