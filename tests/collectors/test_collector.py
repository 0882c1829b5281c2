"""Collector: batch sizes and shapes, actions, state across batches, trajectory ids, options, errors."""
from __future__ import annotations

import io

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    TensorDictModule,
    TensorDictSequential,
    interaction_type,
)

from rlbench.collectors import Collector, ExplorationType, split_trajectories
from rlbench.envs import CartPoleEnv, GymEnv, SerialEnv
from rlbench.testing import ContinuousCountingEnv, CountingEnv


def const_policy(value: int = 1):
    """A deterministic policy: always the same action."""
    return TensorDictModule(
        lambda obs: torch.full(obs.shape[:-1], value, dtype=torch.int64), in_keys=["observation"], out_keys=["action"]
    )


class ListBuffer:
    """The smallest replay buffer: a list of the batches it was given."""

    def __init__(self):
        self.batches = []

    def extend(self, td):
        self.batches.append(td)


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("make_env, shape", [
    (lambda: CountingEnv(max_steps=4), (12,)),
    (lambda: CountingEnv(max_steps=4, batch_size=[3]), (3, 4)),
    (lambda: CountingEnv(max_steps=4, batch_size=[2, 3]), (2, 3, 2)),
    (lambda: SerialEnv(2, lambda: CountingEnv(max_steps=4)), (2, 6)),
    (lambda: CartPoleEnv(batch_size=[4]), (4, 3)),
])
def test_frames_per_batch_and_shapes(make_env, shape):
    collector = Collector(make_env, frames_per_batch=12, total_frames=36)
    batches = list(collector)
    assert len(batches) == len(collector) == 3
    for batch in batches:
        assert batch.shape == shape and batch.numel() == 12
        assert batch["collector", "traj_ids"].shape == shape
        assert batch["collector", "traj_ids"].dtype == torch.int64
        assert batch["next", "reward"].shape == (*shape, 1)
        assert collector.env.action_spec.is_in(batch["action"])
    collector.shutdown()
    assert collector.env.is_closed  # made by the collector, so closed by it


def test_gym_vector_env_batches():
    collector = Collector(lambda: GymEnv("CartPole-v1", num_envs=2), frames_per_batch=20, total_frames=40)
    for batch in collector:
        assert batch.shape == (2, 10)
        assert batch["next", "observation"].dtype == torch.float32
    collector.shutdown()


def test_given_env_is_not_closed_by_shutdown():
    env = CountingEnv(batch_size=[2])
    collector = Collector(env, frames_per_batch=4, total_frames=4)
    list(collector)
    collector.shutdown()
    assert not env.is_closed


def test_total_frames_ends_iteration_and_len():
    collector = Collector(CountingEnv(batch_size=[2]), frames_per_batch=4, total_frames=10)
    assert len(collector) == 3  # rounded up to whole batches
    assert sum(b.numel() for b in collector) == 12
    assert list(collector) == []  # exhausted
    forever = Collector(CountingEnv(), frames_per_batch=2)
    with pytest.raises(TypeError, match="runs forever"):
        len(forever)
    it = iter(forever)
    for _ in range(5):
        assert next(it).shape == (2,)


# ----------------------------------------------------------------- actions
def test_random_actions_when_no_policy():
    env = CountingEnv(max_steps=1000, batch_size=[4])
    batch = next(iter(Collector(env, frames_per_batch=400)))
    assert env.action_spec.is_in(batch["action"])
    assert 0 < batch["action"].float().mean() < 1  # both actions appear


def test_policy_actions_appear_and_reach_env():
    collector = Collector(CountingEnv(max_steps=1000, batch_size=[2]), const_policy(1), frames_per_batch=10)
    batch = next(iter(collector))
    assert (batch["action"] == 1).all()
    # "total" counts the actions the env received
    assert batch["next", "total"][..., -1, 0].tolist() == [5.0, 5.0]


def test_policy_returning_none_writes_in_place():
    def policy(td):
        td.set("action", torch.ones(td.shape, dtype=torch.int64))

    batch = next(iter(Collector(CountingEnv(batch_size=[2]), policy, frames_per_batch=6)))
    assert (batch["action"] == 1).all()


def test_init_random_frames():
    env = CountingEnv(max_steps=10_000, batch_size=[8])
    collector = Collector(env, const_policy(1), frames_per_batch=400, init_random_frames=800, total_frames=1600)
    means = [float(b["action"].float().mean()) for b in collector]
    assert means[0] < 0.9 and means[1] < 0.9  # random while fewer than 800 frames were collected
    assert means[2] == means[3] == 1.0


# -------------------------------------------------------- state and ids
def test_continuity_across_batches():
    env = CountingEnv(max_steps=7, batch_size=[2])
    batches = list(Collector(env, const_policy(0), frames_per_batch=6, total_frames=30))
    obs = torch.cat([b["observation"] for b in batches], 1)[..., 0]
    nxt = torch.cat([b["next", "observation"] for b in batches], 1)[..., 0]
    done = torch.cat([b["next", "done"] for b in batches], 1)[..., 0]
    # one long rollout cut into batches: each step starts where the previous ended (or at 0 after done)
    expected_next_root = torch.where(done[:, :-1], torch.zeros_like(nxt[:, :-1]), nxt[:, :-1])
    assert torch.equal(obs[:, 1:], expected_next_root)
    assert obs[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0]


def test_traj_ids_semantics():
    env = CountingEnv(max_steps=torch.tensor([2, 3]), batch_size=[2])
    batches = list(Collector(env, frames_per_batch=8, total_frames=24))
    ids = torch.cat([b["collector", "traj_ids"] for b in batches], 1)
    done = torch.cat([b["next", "done"] for b in batches], 1)[..., 0]
    obs = torch.cat([b["observation"] for b in batches], 1)[..., 0]
    assert ids[:, 0].tolist() == [0, 1]
    # a new id exactly after each done step, the same id otherwise
    changed = ids[:, 1:] != ids[:, :-1]
    assert torch.equal(changed, done[:, :-1])
    assert ((obs == 0) == torch.cat([torch.ones(2, 1, dtype=torch.bool), changed], 1)).all()
    # unique across sub-envs and growing with time
    starts = torch.cat([ids[:, :1], torch.where(changed, ids[:, 1:], -1)], 1)
    new = starts[starts >= 0]
    assert new.unique().numel() == new.numel()
    for t in range(1, ids.shape[1]):
        fresh = starts[:, t][starts[:, t] >= 0]
        assert (fresh > ids[:, :t].max()).all()


def test_reset_at_each_iter():
    env = CountingEnv(max_steps=100, batch_size=[2])
    batches = list(Collector(env, frames_per_batch=6, total_frames=18, reset_at_each_iter=True))
    for b in batches:
        assert b["observation"][:, 0, 0].tolist() == [0.0, 0.0]
    first_ids = [b["collector", "traj_ids"][:, 0].tolist() for b in batches]
    assert first_ids == [[0, 1], [2, 3], [4, 5]]


def test_set_seed_reproducible_and_resets():
    def run():
        torch.manual_seed(0)
        c = Collector(lambda: GymEnv("CartPole-v1"), frames_per_batch=20, total_frames=20, seed=3)
        return next(iter(c))["observation"]

    assert torch.equal(run(), run())
    c = Collector(CountingEnv(max_steps=100), frames_per_batch=3)
    next(iter(c))
    assert c.set_seed(1) == 1
    batch = c.collect()
    assert batch["observation"][0, 0] == 0  # the env was reset so the seed applies
    assert batch["collector", "traj_ids"][0] == 1


# ----------------------------------------------------------------- options
def test_split_trajs_matches_split_trajectories():
    env = CountingEnv(max_steps=torch.tensor([2, 5]), batch_size=[2])
    collector = Collector(env, frames_per_batch=12, total_frames=12, split_trajs=True)
    batch = next(iter(collector))
    ref = split_trajectories(Collector(CountingEnv(max_steps=torch.tensor([2, 5]), batch_size=[2]),
                                       frames_per_batch=12).collect())
    assert batch.shape == ref.shape
    assert torch.equal(batch["collector", "mask"], ref["collector", "mask"])
    assert torch.equal(batch["next", "observation"], ref["next", "observation"])


def test_replay_buffer_gets_every_batch_as_transitions():
    rb = ListBuffer()
    collector = Collector(CountingEnv(batch_size=[2]), frames_per_batch=4, total_frames=12, replay_buffer=rb)
    yielded = list(collector)
    assert len(rb.batches) == 3
    for written, batch in zip(rb.batches, yielded):
        assert batch.shape == (2, 2) and written.shape == (4,)
        assert torch.equal(written["next", "observation"], batch["next", "observation"].reshape(4, -1))


def test_replay_buffer_with_a_two_dimensional_storage_gets_time_major_rows():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    rb = ReplayBuffer(storage=LazyTensorStorage(30, ndim=2))  # max_size counts items: 10 rows of 3
    batches = list(Collector(CountingEnv(batch_size=[3]), frames_per_batch=12, total_frames=24, replay_buffer=rb))
    assert rb.storage.shape == (10, 3) and len(rb) == 24
    stored = torch.cat([b["next", "observation"] for b in batches], dim=1)  # [3 envs, 8 steps, 1]
    assert torch.equal(rb[:]["next", "observation"].reshape(8, 3), stored.squeeze(-1).T)
    with pytest.raises(TypeError, match="extend"):
        Collector(CountingEnv(), frames_per_batch=4, replay_buffer=object())


def _prob_policy():
    """A categorical policy over 2 actions whose mode is always action 1."""
    logits = TensorDictModule(lambda obs: torch.tensor([0.0, 0.5]).expand(*obs.shape[:-1], 2),
                              in_keys=["observation"], out_keys=["logits"])
    dist = ProbabilisticTensorDictModule(in_keys=["logits"], out_keys=["action"],
                                         distribution_class=torch.distributions.Categorical)
    return TensorDictSequential(logits, dist)


def test_exploration_type_respected():
    seen = []

    def spy(td):
        seen.append(interaction_type())
        return td.set("action", torch.zeros(td.shape, dtype=torch.int64))

    Collector(CountingEnv(), spy, frames_per_batch=2, exploration_type=ExplorationType.DETERMINISTIC).collect()
    Collector(CountingEnv(), spy, frames_per_batch=2, exploration_type="mode").collect()
    assert seen == [InteractionType.DETERMINISTIC] * 2 + [InteractionType.MODE] * 2
    env = CountingEnv(max_steps=1000, batch_size=[50])
    det = Collector(env, _prob_policy(), frames_per_batch=500, exploration_type=ExplorationType.DETERMINISTIC)
    assert (det.collect()["action"] == 1).all()
    rnd = Collector(env, _prob_policy(), frames_per_batch=500, exploration_type=ExplorationType.RANDOM)
    assert 0.3 < rnd.collect()["action"].float().mean() < 0.9
    with pytest.raises(ValueError, match="exploration_type"):
        Collector(env, frames_per_batch=50, exploration_type="greedy")


def test_nn_module_policy_runs_without_grad():
    net = torch.nn.Linear(1, 2)
    policy = TensorDictModule(lambda obs: net(obs).argmax(-1), in_keys=["observation"], out_keys=["action"])
    batch = Collector(CountingEnv(batch_size=[2]), policy, frames_per_batch=4).collect()
    assert not any(v.requires_grad for v in batch.values(True, True))


def test_storing_device_and_device():
    collector = Collector(CountingEnv(batch_size=[2]), const_policy(1), frames_per_batch=4,
                          device="cpu", storing_device="meta")
    batch = collector.collect()
    assert batch.device == torch.device("meta")
    assert batch["action"].device == torch.device("meta")


def test_progress_bar_shows_return():
    out = io.StringIO()
    env = CountingEnv(max_steps=3, batch_size=[2])
    collector = Collector(env, frames_per_batch=12, total_frames=24, progress={"file": out, "mininterval": 0})
    list(collector)
    text = out.getvalue()
    assert "24/24" in text and "episode_return=3" in text
    assert list(collector.episode_returns) == [3.0] * 8
    Collector(CountingEnv(), frames_per_batch=4, total_frames=4, progress=True)  # plain True works too


@pytest.mark.parametrize("progress", [False, {"file": io.StringIO()}], ids=["no_bar", "bar"])
def test_episode_returns_span_batches_with_or_without_a_progress_bar(progress):
    env = CountingEnv(max_steps=5, batch_size=[3])
    collector = Collector(env, frames_per_batch=6, total_frames=60, progress=progress)
    list(collector)
    assert list(collector.episode_returns) == [5.0] * 12  # each episode spans 2-3 batches of 2 steps
    assert collector.episodes.finished == 12 and collector.episodes.mean() == 5.0


def test_a_reset_forgets_the_running_episodes():
    env = CountingEnv(max_steps=5, batch_size=[2])
    collector = Collector(env, frames_per_batch=6, reset_at_each_iter=True)  # 3 steps, then a reset
    for _ in range(4):
        collector.collect()
    assert collector.episodes.finished == 0  # no 5-step episode ever ended
    assert list(collector.episodes.carry.values()) == [3.0, 3.0]  # only the last batch's episodes run on


def test_state_dict_keeps_the_episode_returns_and_loads_the_old_layout():
    def make():  # torch-native: the whole env state travels in the checkpoint, so episodes run on
        return Collector(CartPoleEnv(batch_size=[3], seed=0), frames_per_batch=30, total_frames=300)

    torch.manual_seed(0)
    first = make()
    for _ in range(3):
        first.collect()
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.episodes.carry == first.episodes.carry != {}
    assert list(resumed.episodes.recent) == list(first.episodes.recent) != []
    # a state written before EpisodeReturns: one running return per sub-env, and the recent returns
    old = {k: v for k, v in state.items() if k != "episodes"}
    old["running_return"] = torch.tensor([first.episodes.carry.get(i, 0.0) for i in state["traj_ids"].tolist()],
                                         dtype=torch.float64)
    old["episode_returns"] = list(first.episodes.recent)
    from_old = make()
    from_old.load_state_dict(old)
    carried = {k: v for k, v in from_old.episodes.carry.items() if v}
    assert carried == first.episodes.carry and list(from_old.episodes.recent) == list(first.episodes.recent)


def test_update_policy_weights():
    net = torch.nn.Linear(1, 2)
    policy = TensorDictModule(lambda obs: net(obs).argmax(-1), in_keys=["observation"], out_keys=["action"])
    collector = Collector(CountingEnv(), policy, frames_per_batch=2)
    collector.update_policy_weights_()  # no-op
    lin = TensorDictModule(torch.nn.Linear(1, 1), in_keys=["observation"], out_keys=["x"])
    c2 = Collector(CountingEnv(), lin, frames_per_batch=2)
    c2.update_policy_weights_({"module.weight": torch.full((1, 1), 3.0), "module.bias": torch.zeros(1)})
    assert lin.module.weight.item() == 3.0


# ------------------------------------------------------------------ errors
def test_frames_per_batch_not_divisible():
    with pytest.raises(ValueError, match=r"frames_per_batch=10 must be a positive multiple .*\(3"):
        Collector(CountingEnv(batch_size=[3]), frames_per_batch=10)


def test_bad_arguments():
    with pytest.raises(TypeError, match="EnvBase"):
        Collector(42, frames_per_batch=4)
    with pytest.raises(TypeError, match="make_env must return"):
        Collector(lambda: "not an env", frames_per_batch=4)
    with pytest.raises(TypeError, match="policy must be a callable"):
        Collector(CountingEnv(), policy=3, frames_per_batch=4)
    with pytest.raises(ValueError, match="total_frames"):
        Collector(CountingEnv(), frames_per_batch=4, total_frames=0)


def test_policy_without_action_key():
    policy = TensorDictModule(lambda obs: obs * 2, in_keys=["observation"], out_keys=["not_action"])
    collector = Collector(CountingEnv(), policy, frames_per_batch=4)
    with pytest.raises(KeyError, match=r"did not write the action under 'action'.*not_action"):
        collector.collect()


def test_policy_returning_non_tensordict():
    collector = Collector(CountingEnv(), lambda td: 3, frames_per_batch=4)
    with pytest.raises(TypeError, match="must return a TensorDict"):
        collector.collect()


def test_wrong_action_shape_names_key():
    policy = TensorDictModule(lambda obs: torch.zeros(*obs.shape[:-1], 5), in_keys=["observation"], out_keys=["action"])
    collector = Collector(ContinuousCountingEnv(batch_size=[2], action_dim=2), policy, frames_per_batch=4)
    with pytest.raises(ValueError, match=r"action under key 'action'.*expected shape \(2, 2\), got \(2, 5\)"):
        collector.collect()


def test_collector_in_repr_and_td_types():
    collector = Collector(CountingEnv(batch_size=[2]), frames_per_batch=4, total_frames=8)
    assert "frames_per_batch=4" in repr(collector)
    assert isinstance(collector.collect(), TensorDict)


def test_direct_tensordict_module_path_matches_module():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))

    class Argmax(torch.nn.Module):
        def forward(self, obs):
            logits = net(obs)
            return logits.argmax(-1), logits

    policy = TensorDictModule(Argmax(), in_keys=["observation"], out_keys=["action", "logits"])
    batch = Collector(CountingEnv(max_steps=6, batch_size=[2]), policy, frames_per_batch=20).collect()
    assert torch.equal(batch["logits"], net(batch["observation"]))
    assert torch.equal(batch["action"], batch["logits"].argmax(-1))

    class DictOut(torch.nn.Module):  # an output the direct path leaves to tensordict
        def forward(self, obs):
            return {"action": torch.zeros(obs.shape[:-1], dtype=torch.int64)}

    odd = TensorDictModule(DictOut(), in_keys=["observation"], out_keys=["action"])
    assert (Collector(CountingEnv(), odd, frames_per_batch=5).collect()["action"] == 0).all()


def test_interrupted_batch_restarts_from_reset():
    calls = {"n": 0}

    def flaky(td):
        calls["n"] += 1
        if calls["n"] == 8:  # in the second batch
            raise KeyboardInterrupt
        return td.set("action", torch.ones(td.shape, dtype=torch.int64))

    collector = Collector(CountingEnv(max_steps=100, batch_size=[2]), flaky, frames_per_batch=10)
    collector.collect()
    with pytest.raises(KeyboardInterrupt):
        collector.collect()
    batch = collector.collect()
    assert batch["observation"][:, 0, 0].tolist() == [0.0, 0.0]
    assert batch["collector", "traj_ids"][:, 0].tolist() == [2, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_policy_on_cuda_env_on_cpu():
    net = torch.nn.Linear(1, 2).cuda()
    policy = TensorDictModule(lambda obs: net(obs).argmax(-1), in_keys=["observation"], out_keys=["action"])
    collector = Collector(CountingEnv(batch_size=[2]), policy, frames_per_batch=6, device="cuda", storing_device="cpu")
    batch = collector.collect()
    assert batch.device == torch.device("cpu") and batch.shape == (2, 3)
    on_gpu = Collector(CountingEnv(batch_size=[2]), policy, frames_per_batch=6, device="cuda").collect()
    assert on_gpu["action"].is_cuda


# -------------------------------------------- random phase keeps the policy's layout (issue 13 item 14)
def _q_policy(env, eps=None):
    from rlbench.modules import EGreedyModule, QValueActor

    actor = QValueActor(torch.nn.Linear(4, 2), spec=env.action_spec)
    if eps is None:
        return actor
    return TensorDictSequential(actor, EGreedyModule(env.action_spec, eps, eps, annealing_num_steps=1))


def test_random_phase_batches_have_the_policy_keys_so_a_storage_takes_both_phases():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    env = CartPoleEnv(batch_size=[4])
    rb = ReplayBuffer(storage=LazyTensorStorage(1_000))
    collector = Collector(env, _q_policy(env), frames_per_batch=32, total_frames=128, init_random_frames=64)
    batches = []
    for batch in collector:  # a hand-written off-policy loop, as TorchRL's DQN tutorial writes it
        rb.extend(batch.reshape(-1))  # raised StorageMismatchError at the first policy batch
        batches.append(batch)
    keys = [set(b.keys(True, True)) for b in batches]
    assert keys[0] == keys[1] == keys[2] == keys[3]
    assert {"action_value", "chosen_action_value"} <= keys[0]
    random, acted = batches[0], batches[2]
    for key in ("action_value", "chosen_action_value"):
        assert random[key].shape == acted[key].shape and random[key].dtype == acted[key].dtype
        assert not random[key].any()  # zeros: the policy did not act
    assert len(rb) == 128
    assert set(rb.sample(8).keys(True, True)) == keys[0]


def test_random_phase_fills_the_collectors_own_replay_buffer_with_both_phases():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    env = CartPoleEnv(batch_size=[2])
    rb = ReplayBuffer(storage=LazyTensorStorage(1_000))
    list(Collector(env, _q_policy(env, eps=0.5), frames_per_batch=16, total_frames=64, init_random_frames=32,
                   replay_buffer=rb))
    assert len(rb) == 64 and "action_value" in rb.sample(4).keys()


def test_learning_the_policy_keys_leaves_the_random_actions_as_they_were():
    # the policy runs once, on the first batch's root, to learn its outputs: under a saved and restored RNG,
    # so the random phase draws exactly what it drew before (seeded runs are unchanged)
    def random_actions(policy):
        torch.manual_seed(0)
        env = CartPoleEnv(batch_size=[3], seed=1)
        collector = Collector(env, policy, frames_per_batch=30, total_frames=60, init_random_frames=60)
        return torch.cat([b["action"] for b in collector], -1)

    env = CartPoleEnv(batch_size=[3])
    assert torch.equal(random_actions(None), random_actions(_q_policy(env, eps=0.5)))


def test_a_policy_that_never_acts_is_not_run():
    calls = []

    def policy(td):
        calls.append(1)
        return td.set("action", torch.zeros(td.shape, dtype=torch.int64))

    list(Collector(CountingEnv(batch_size=[2]), policy, frames_per_batch=4, total_frames=8, init_random_frames=8))
    assert calls == []


def test_random_phase_of_a_recurrent_policy_has_its_feature_keys():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer
    from rlbench.envs import TransformedEnv
    from rlbench.modules import LSTMModule

    lstm = LSTMModule(input_size=4, hidden_size=8, in_key="observation", out_key="features")
    env = TransformedEnv(CartPoleEnv(batch_size=[2]), lstm.make_tensordict_primer())
    policy = TensorDictSequential(lstm, TensorDictModule(lambda f: (f[..., 0] > 0).long(), ["features"], ["action"]))
    rb = ReplayBuffer(storage=LazyTensorStorage(100))
    batches = list(Collector(env, policy, frames_per_batch=8, total_frames=32, init_random_frames=16,
                             replay_buffer=rb))
    assert set(batches[0].keys(True, True)) == set(batches[-1].keys(True, True)) and len(rb) == 32
    assert batches[0]["features"].shape == batches[-1]["features"].shape == (2, 4, 8)


# ------------------------------------------- TorchRL spellings: create_env_fn, start / async_shutdown (item 21)
def test_create_env_fn_and_kwargs_as_torchrl_spells_them():
    from rlbench.envs import EnvCreator

    collector = Collector(create_env_fn=CountingEnv, create_env_kwargs={"max_steps": 3, "batch_size": [2]},
                          policy=const_policy(1), frames_per_batch=8, total_frames=8)
    batch = next(iter(collector))
    assert batch.shape == (2, 4) and int(batch["next", "observation"].max()) == 3  # max_steps=3 reached the env
    env = collector.env
    collector.shutdown()
    assert env.is_closed  # built by the collector, so closed by it
    made = Collector(create_env_fn=EnvCreator(CountingEnv, {"batch_size": [3]}), frames_per_batch=6)
    assert made.env.batch_size == (3,)
    given = CountingEnv(batch_size=[2])
    Collector(create_env_fn=given, frames_per_batch=4).shutdown()
    assert not given.is_closed  # the caller's env stays open
    with pytest.raises(TypeError, match="give env_or_make_env or create_env_fn .* not both"):
        Collector(given, create_env_fn=CountingEnv, frames_per_batch=4)
    with pytest.raises(TypeError, match="create_env_kwargs are arguments for a callable .* the env itself"):
        Collector(create_env_fn=given, create_env_kwargs={"max_steps": 2}, frames_per_batch=4)
    with pytest.raises(TypeError, match="runs one env, got 2 makers; use SerialEnv/ParallelEnv"):
        Collector(create_env_fn=[CountingEnv, CountingEnv], frames_per_batch=4)
    with pytest.raises(TypeError, match="missing the env"):
        Collector(frames_per_batch=4)


def _wait(predicate, seconds=30.0):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_start_fills_the_replay_buffer_in_the_background_until_total_frames():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    rb = ReplayBuffer(storage=LazyTensorStorage(1_000))
    collector = Collector(CountingEnv(batch_size=[2], max_steps=100), const_policy(1), frames_per_batch=8,
                          total_frames=96, replay_buffer=rb)
    collector.start()
    collector.join(timeout=30)
    assert not collector.is_running() and len(rb) == 96 and collector.frames == 96
    assert (rb.storage.get(list(range(96)))["action"] == 1).all()
    collector.async_shutdown()


def test_async_shutdown_stops_an_endless_background_collection_and_training_can_sample_meanwhile():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    rb = ReplayBuffer(storage=LazyTensorStorage(100_000), batch_size=16)
    collector = Collector(create_env_fn=CountingEnv, create_env_kwargs={"batch_size": [4], "max_steps": 50},
                          policy=const_policy(0), frames_per_batch=16, total_frames=-1, replay_buffer=rb)
    collector.start()
    with pytest.raises(RuntimeError, match="already collecting in the background"):
        collector.start()
    with pytest.raises(RuntimeError, match="cannot iterate over it while collecting in the background"):
        iter(collector)
    with pytest.raises(RuntimeError, match="cannot state_dict while collecting in the background"):
        collector.state_dict()
    _wait(lambda: len(rb) >= 64)
    for _ in range(5):  # the caller trains on what the thread stores
        sample = rb.sample()
        assert sample.shape == (16,) and (sample["next", "observation"] == sample["observation"] + 1).all()
        collector.update_policy_weights_()
    collector.async_shutdown(timeout=30)
    frames = collector.frames
    assert not collector.is_running() and collector.env.is_closed and len(rb) == frames
    import time

    time.sleep(0.05)
    assert collector.frames == frames  # nothing collects after the shutdown


def test_a_fault_in_the_background_thread_surfaces_in_the_caller():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    calls = []

    def faulty(td):
        calls.append(1)
        if len(calls) > 20:
            raise ValueError("policy broke at call 21")
        return td.set("action", torch.zeros(td.shape, dtype=torch.int64))

    rb = ReplayBuffer(storage=LazyTensorStorage(1_000))
    collector = Collector(CountingEnv(batch_size=[2], max_steps=100), faulty, frames_per_batch=8, total_frames=-1,
                          replay_buffer=rb)
    collector.start()
    _wait(lambda: not collector.is_running(), seconds=30)  # the thread ends: it does not hang
    with pytest.raises(RuntimeError, match=r"background collection failed after 40 frames: ValueError: policy broke"):
        collector.update_policy_weights_()
    collector.async_shutdown()  # reported once: the shutdown itself goes through
    assert len(rb) == 40  # five whole batches (4 policy calls each) before the failing one
    collector = Collector(CountingEnv(batch_size=[2]), faulty, frames_per_batch=8, total_frames=-1, replay_buffer=rb)
    collector.start()
    with pytest.raises(RuntimeError, match="ValueError: policy broke"):
        collector.async_shutdown(timeout=30)  # or at the shutdown, if nothing asked before


def test_start_needs_a_replay_buffer():
    with pytest.raises(RuntimeError, match=r"background collection writes into a replay buffer: build the collector "
                                           r"with replay_buffer="):
        Collector(CountingEnv(), frames_per_batch=4).start()


def test_the_background_exploration_type_stays_in_its_thread():
    import time

    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    seen = []

    def slow_policy(td):
        seen.append(interaction_type())
        time.sleep(0.002)
        return td.set("action", torch.zeros(td.shape, dtype=torch.int64))

    rb = ReplayBuffer(storage=LazyTensorStorage(10_000))
    collector = Collector(CountingEnv(batch_size=[2], max_steps=100), slow_policy, frames_per_batch=8,
                          total_frames=-1, exploration_type="random", replay_buffer=rb)
    from tensordict.nn import set_interaction_type

    collector.start()
    outside = []
    with set_interaction_type(InteractionType.DETERMINISTIC):  # e.g. an evaluation in the main thread
        for _ in range(200):
            outside.append(interaction_type())
            time.sleep(0.0005)
    collector.async_shutdown(timeout=30)
    assert set(outside) == {InteractionType.DETERMINISTIC}
    assert len(seen) > 10 and set(seen) == {InteractionType.RANDOM}
