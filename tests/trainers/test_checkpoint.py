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
    entry = torch.load(path, weights_only=True)["components"]["rb"]
    assert (path.parent / entry["dir"]).is_dir() and entry["dir"].startswith("ckpt.pt.buffers")
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


# ------------------------------------------------------------------ issue 13 item 1: buffer data is checked too
def _plant_pickle(data_dir, marker):
    """A pickled non-tensor entry in a tensordict memmap directory: its unpickling creates ``marker``."""
    import json

    meta = json.loads((data_dir / "meta.json").read_text())
    meta["evil"] = {"type": "NonTensorData"}
    (data_dir / "meta.json").write_text(json.dumps(meta))
    (data_dir / "evil").mkdir()
    (data_dir / "evil" / "meta.json").write_text(json.dumps(
        {"_type": "<class 'tensordict.tensorclass.NonTensorData'>", "_metadata": None, "_is_non_tensor": True}))
    (data_dir / "evil" / "other.pickle").write_bytes(pickle.dumps({"data": _Evil()}))


def _buffer_data_dir(path, name):
    entry = torch.load(path, weights_only=True)["components"][name]
    return path.parent / entry["dir"] / "storage" / "data"


def test_pickle_planted_in_a_checkpointed_buffer_never_runs(tmp_path):
    from _setups import dqn

    _Evil.marker = tmp_path / "pwned"
    rb = ReplayBuffer(storage=LazyTensorStorage(50))
    rb.extend(torch.arange(30.0).reshape(10, 3))
    path = save_checkpoint(tmp_path / "ckpt.pt", rb=rb)
    _plant_pickle(_buffer_data_dir(path, "rb"), _Evil.marker)
    with pytest.raises(UnsafeCheckpointError, match="'evil'"):
        load_checkpoint(path, rb=ReplayBuffer(storage=LazyTensorStorage(50)))
    assert not _Evil.marker.exists()

    trainer = dqn(2)
    trainer.train(batches=1)
    trainer.save(tmp_path / "t.pt")
    _plant_pickle(_buffer_data_dir(tmp_path / "t.pt", "replay_buffer"), _Evil.marker)
    with pytest.raises(UnsafeCheckpointError, match="'evil'"):
        dqn(2).load(tmp_path / "t.pt")
    assert not _Evil.marker.exists()


# ------------------------------------------------------------------ issue 13 item 2: a killed save is atomic
_SAVE_CHILD = r"""
import json, os, signal, sys
import torch
sys.path.insert(0, sys.argv[3])
from _setups import dqn

path, point = sys.argv[1], sys.argv[2]


def fingerprint(t):
    rb = t.replay_buffer
    return {"batches": t.batches, "len": len(rb), "obs": float(rb[:]["observation"].double().sum()),
            "params": float(sum(p.detach().double().sum() for p in t.loss.parameters()))}


def die():
    os.kill(os.getpid(), signal.SIGKILL)


t = dqn(8)
t.train(batches=2)
t.save(path)
old = fingerprint(t)
t.train(batches=2)
print(json.dumps({"old": old, "new": fingerprint(t)}), flush=True)
save, replace = torch.save, os.replace


def patched_save(obj, f, *args, **kwargs):
    name = os.path.basename(str(f))
    if (point == "buffer_state" and name == "state.pt") or (point == "payload" and name.endswith(".tmp")):
        die()  # buffer data written, its sampler state not / every buffer written, the .pt not
    return save(obj, f, *args, **kwargs)


def patched_replace(src, dst, *args, **kwargs):
    replace(src, dst, *args, **kwargs)
    if point == "replaced" and str(dst) == path:
        die()  # the new .pt is in place, the old buffers are not deleted yet


torch.save, os.replace = patched_save, patched_replace
t.save(path)
print("not killed", flush=True)
"""

_KILL_POINTS = {"buffer_state": "old", "payload": "old", "replaced": "new"}


def test_save_killed_at_any_point_loads_old_or_new_state_whole(tmp_path):
    """SIGKILL a child in the middle of Trainer.save: the checkpoint is the complete old or new state."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from _setups import dqn

    here = str(Path(__file__).parent)
    for d in _KILL_POINTS:
        (tmp_path / d).mkdir()
    procs = {point: subprocess.Popen([sys.executable, "-c", _SAVE_CHILD, str(tmp_path / point / "ckpt.pt"), point,
                                      here], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for point in _KILL_POINTS}
    for point, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == -9, f"{point}: the child was not killed mid-save: {out} {err}"
        states = json.loads(out.splitlines()[0])
        assert states["old"] != states["new"]
        resumed = dqn(8)
        resumed.load(tmp_path / point / "ckpt.pt")
        got = {"batches": resumed.batches, "len": len(resumed.replay_buffer),
               "obs": float(resumed.replay_buffer[:]["observation"].double().sum()),
               "params": float(sum(p.detach().double().sum() for p in resumed.loss.parameters()))}
        assert got == states[_KILL_POINTS[point]], f"killed at {point}: a mixed checkpoint {got} vs {states}"
        # the next save succeeds and leaves one checkpoint: no .tmp, no orphaned buffer directory
        resumed.save(tmp_path / point / "ckpt.pt")
        left = sorted(p.name for p in (tmp_path / point).iterdir())
        assert len(left) == 2 and left[0] == "ckpt.pt" and left[1].startswith("ckpt.pt.buffers"), left
        assert not [p for p in (tmp_path / point).rglob("*") if p.name.endswith(".tmp")]


def test_save_replaces_the_buffer_directory_it_points_to(tmp_path):
    rb = ReplayBuffer(storage=LazyTensorStorage(50), batch_size=4)
    rb.extend(torch.arange(30.0).reshape(10, 3))
    path = save_checkpoint(tmp_path / "ckpt.pt", rb=rb)
    first = torch.load(path, weights_only=True)["components"]["rb"]["dir"]
    rb.extend(torch.ones(5, 3))
    save_checkpoint(path, rb=rb)
    second = torch.load(path, weights_only=True)["components"]["rb"]["dir"]
    assert first != second and not (tmp_path / first).exists() and (tmp_path / second).is_dir()
    back = ReplayBuffer(storage=LazyTensorStorage(50), batch_size=4)
    load_checkpoint(path, rb=back)
    assert len(back) == 15 and torch.equal(back[:], rb[:])
    # another checkpoint in the same folder is left alone
    other = save_checkpoint(tmp_path / "ckpt.pt.old.pt", rb=rb)
    save_checkpoint(path, rb=rb)
    load_checkpoint(other, rb=ReplayBuffer(storage=LazyTensorStorage(50)))
