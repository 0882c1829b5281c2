"""Checkpoints: components round trip, RNG states, collector state, and safe loading."""
import os
import pickle
import random

import numpy as np
import pytest
import torch
from tensordict.nn import TensorDictModule

from rlbench.buffers import LazyTensorStorage, ReplayBuffer
from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv, GymEnv
from rlbench.envs.transforms import TransformedEnv
from rlbench.trainers import UnsafeCheckpointError, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state


def _policy():
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    return TensorDictModule(lambda obs: net(obs).argmax(-1), ["observation"], ["action"]), net


def test_rng_state_round_trip_all_three_generators():
    state = get_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_modules_optimizers_buffers_values_round_trip(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(5, 3)).sum().backward()
    opt.step()
    rb = ReplayBuffer(storage=LazyTensorStorage(50), batch_size=4)
    rb.extend(torch.arange(30.0).reshape(10, 3))
    path = save_checkpoint(tmp_path / "c" / "ckpt.pt", net=net, opt=opt, rb=rb, counters={"frames": 7, "x": [1.5]})
    assert (tmp_path / "c" / "ckpt.pt.buffers" / "rb").is_dir()
    expected_sample = rb.sample()
    torch.manual_seed(123)  # scramble the global RNG: load restores it
    net2, rb2 = torch.nn.Linear(3, 2), ReplayBuffer(storage=LazyTensorStorage(50), batch_size=4)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    values = load_checkpoint(path, net=net2, opt=opt2, rb=rb2)
    assert values == {"counters": {"frames": 7, "x": [1.5]}}
    assert torch.equal(net2.weight, net.weight) and torch.equal(net2.bias, net.bias)
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    assert len(rb2) == 10 and torch.equal(rb2.sample(), expected_sample)  # same contents and sampler RNG


def test_loss_targets_and_extra_parameters_round_trip(tmp_path):
    from rlbench.objectives import LossModule

    def make():
        net = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        loss = LossModule()
        loss.convert_to_functional(net, "value_network", create_target_params=True)
        loss.log_alpha = torch.nn.Parameter(torch.zeros(()))  # e.g. SAC's temperature
        return loss

    loss = make()
    with torch.no_grad():
        loss.log_alpha.fill_(-1.25)
        loss.target_value_network_params["module", "weight"].add_(1.0)  # targets differ from online weights
    save_checkpoint(tmp_path / "ckpt.pt", loss=loss)
    fresh = make()
    load_checkpoint(tmp_path / "ckpt.pt", loss=fresh)
    assert fresh.log_alpha.item() == -1.25
    for name in (("module", "weight"), ("module", "bias")):
        assert torch.equal(fresh.target_value_network_params[name], loss.target_value_network_params[name])
        assert torch.equal(fresh.value_network_params[name], loss.value_network_params[name])
    assert not torch.equal(fresh.target_value_network_params["module", "weight"],
                           fresh.value_network_params["module", "weight"])


def test_load_errors_name_what_is_wrong(tmp_path):
    net = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "ckpt.pt", net=net, step=3)
    with pytest.raises(KeyError, match=r"has no component\(s\) \['optim'\]; it holds \['net', 'step'\]"):
        load_checkpoint(path, optim=torch.optim.SGD(net.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="'net' was saved from a Linear .*int has no load_state_dict"):
        load_checkpoint(path, net=3)
    with pytest.raises(TypeError, match="cannot save thing=object"):
        save_checkpoint(tmp_path / "x.pt", thing=object())
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not an rlbench checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + str(_Evil.marker),))


def test_malicious_pickle_is_refused(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    path = tmp_path / "ckpt.pt"
    # a genuine checkpoint, then tampered with: an object whose unpickling runs a shell command
    save_checkpoint(path, net=torch.nn.Linear(2, 2))
    payload = torch.load(path, weights_only=True)
    payload["components"]["net"]["state"]["evil"] = _Evil()
    torch.save(payload, path)
    with pytest.raises(UnsafeCheckpointError, match=r"refuses.*pass weights_only=False"):
        load_checkpoint(path, net=torch.nn.Linear(2, 2))
    assert not _Evil.marker.exists()  # the command never ran
    with open(tmp_path / "raw.pt", "wb") as f:  # a bare pickle, not even a torch file
        pickle.dump({"format": "rlbench-checkpoint", "x": _Evil()}, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(tmp_path / "raw.pt")
    assert not _Evil.marker.exists()


@pytest.mark.parametrize("wrap", [False, True])
def test_collector_resumes_mid_episode_exactly(tmp_path, wrap):
    def make():
        env = CartPoleEnv(batch_size=[3], seed=5)
        env = TransformedEnv(env) if wrap else env
        policy, net = _policy()
        return Collector(env, policy, frames_per_batch=30, init_random_frames=30, seed=1), net

    ref, net = make()
    it = iter(ref)
    batches = [next(it) for _ in range(5)]
    col, net_a = make()
    net_a.load_state_dict(net.state_dict())
    ita = iter(col)
    for _ in range(2):
        next(ita)
    path = save_checkpoint(tmp_path / "ckpt.pt", collector=col)
    col2, net_b = make()
    net_b.load_state_dict(net.state_dict())
    load_checkpoint(path, collector=col2)
    assert col2.frames == 60
    it2 = iter(col2)
    for want in batches[2:]:
        got = next(it2)
        assert (got == want).all(), "resumed batches differ from the uninterrupted run"


def test_collector_with_gym_env_restarts_episodes_on_load(tmp_path):
    col = Collector(GymEnv("CartPole-v1"), None, frames_per_batch=20, seed=0)
    first = next(iter(col))
    state = col.state_dict()
    assert state["td"] is None  # a gym env's state lives outside the TensorDict
    col2 = Collector(GymEnv("CartPole-v1"), None, frames_per_batch=20)
    col2.load_state_dict(state)
    batch = next(iter(col2))
    ids = batch["collector", "traj_ids"]
    assert ids.min() > first["collector", "traj_ids"].max()  # new episodes, ids never reused
    assert col2.frames == 40
    col.shutdown(), col2.shutdown()
