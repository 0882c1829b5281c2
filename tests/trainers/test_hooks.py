"""TorchRL's trainer hooks and Trainer keywords (issue 13 item 21): a TorchRL-style loop runs, and matches rlbench's."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictSequential

from rlbench.buffers import LazyTensorStorage, ReplayBuffer
from rlbench.collectors import Collector, ExplorationType, split_trajectories
from rlbench.envs import CartPoleEnv
from rlbench.modules import MLP, EGreedyModule, QValueActor
from rlbench.objectives import DQNLoss, HardUpdate
from rlbench.testing import ListLogger
from rlbench.trainers import LogScalar, LogValidationReward, ReplayBufferTrainer, Trainer, UpdateWeights

FPB = 32


def dqn_parts(seed=0, n_batches=6):
    torch.manual_seed(seed)
    env = CartPoleEnv(batch_size=[2])
    actor = QValueActor(MLP(in_features=4, out_features=2, num_cells=[16]), spec=env.action_spec)
    explore = EGreedyModule(env.action_spec, eps_init=1.0, eps_end=0.05, annealing_num_steps=100)
    collector = Collector(env, TensorDictSequential(actor, explore), frames_per_batch=FPB,
                          total_frames=FPB * n_batches, init_random_frames=2 * FPB)
    loss = DQNLoss(actor)
    return actor, collector, loss, torch.optim.Adam(loss.parameters(), lr=1e-2)


def test_a_torchrl_style_dqn_loop_runs_with_its_hooks_and_keywords():
    # the shape of TorchRL's coding_dqn tutorial, with only the imports changed
    actor, collector, loss, optim = dqn_parts()
    logger = ListLogger()
    trainer = Trainer(collector=collector, total_frames=FPB * 6, frame_skip=1, loss_module=loss, optimizer=optim,
                      logger=logger, optim_steps_per_batch=3, clip_grad_norm=True, clip_norm=10.0, progress_bar=False,
                      seed=0, log_interval=FPB)
    rb = ReplayBuffer(storage=LazyTensorStorage(10_000), batch_size=16)
    ReplayBufferTrainer(rb, flatten_tensordicts=True).register(trainer)
    UpdateWeights(collector, update_weights_interval=1).register(trainer)
    recorder = LogValidationReward(record_interval=2, record_frames=40, frame_skip=1, policy_exploration=actor,
                                   environment=CartPoleEnv(batch_size=[2], seed=7),
                                   exploration_type=ExplorationType.DETERMINISTIC, log_pbar=True)
    recorder.register(trainer)
    target = HardUpdate(loss, value_network_update_interval=4)
    trainer.register_op("post_optim", target.step)
    LogScalar(log_pbar=True).register(trainer)
    trainer.train()
    assert len(rb) == FPB * 6 and trainer.batches == 6 and trainer.updates == 6 * 3
    assert trainer.clip_grad_norm == 10.0 and target.counter == 18 % 4  # one target step per update
    names = {name for name, _, _ in logger.rows}
    assert {"r_training", "r_training_std", "r_evaluation", "total_r_evaluation", "train/loss"} <= names
    assert [step for name, _, step in logger.rows if name == "r_evaluation"] == [FPB, 3 * FPB, 5 * FPB]
    assert all(value == 1.0 for name, value, _ in logger.rows if name in ("r_training", "r_evaluation"))  # CartPole


def test_replay_buffer_trainer_runs_exactly_as_the_replay_buffer_argument():
    def train(register):
        actor, collector, loss, optim = dqn_parts(seed=4)
        rb = ReplayBuffer(storage=LazyTensorStorage(1_000), batch_size=16)
        if register:
            trainer = Trainer(collector=collector, loss_module=loss, optimizer=optim, optim_steps_per_batch=2,
                              progress_bar=False, seed=1)
            ReplayBufferTrainer(rb).register(trainer)
        else:
            trainer = Trainer(collector, loss, optim, rb, optim_steps_per_batch=2, progress_bar=False, seed=1)
        trainer.train()
        return [p.detach().clone() for p in loss.parameters()], trainer.updates

    (hooked, n), (direct, m) = train(True), train(False)
    assert n == m == 12 and all(torch.equal(a, b) for a, b in zip(hooked, direct))


def test_replay_buffer_trainer_refuses_torchrl_only_modes_and_a_second_buffer():
    with pytest.raises(ValueError, match="memmap=True .* LazyMemmapStorage"):
        ReplayBufferTrainer(ReplayBuffer(), memmap=True)
    with pytest.raises(ValueError, match="max_dims .* not supported"):
        ReplayBufferTrainer(ReplayBuffer(), max_dims=[10])
    with pytest.raises(ValueError, match="iterate=True is not supported"):
        ReplayBufferTrainer(ReplayBuffer(), iterate=True)
    with pytest.raises(TypeError, match="expected a replay buffer"):
        ReplayBufferTrainer(object())
    _, collector, loss, optim = dqn_parts()
    trainer = Trainer(collector, loss, optim, ReplayBuffer(batch_size=8), progress_bar=False)
    with pytest.raises(ValueError, match="already trains from another replay buffer"):
        ReplayBufferTrainer(ReplayBuffer(batch_size=8)).register(trainer)
    trainer = Trainer(collector, loss, optim, progress_bar=False)
    with pytest.raises(ValueError, match="needs a sample size"):
        ReplayBufferTrainer(ReplayBuffer()).register(trainer)
    ReplayBufferTrainer(ReplayBuffer(), batch_size=8, device="cpu").register(trainer)
    assert trainer.batch_size == trainer.min_buffer_size == 8 and len(trainer._ops["process_optim_batch"]) == 1


@pytest.mark.parametrize("interval, hook, pushes", [(1, None, 6), (3, None, 2), (1, 2, 3), (1, 1, 6)])
def test_weights_are_pushed_on_the_trainer_or_the_hook_schedule(interval, hook, pushes, monkeypatch):
    _, collector, loss, optim = dqn_parts()
    calls = []
    monkeypatch.setattr(collector, "update_policy_weights_", lambda *a: calls.append(1))
    trainer = Trainer(collector, loss, optim, update_weights_interval=interval, progress_bar=False)
    if hook is not None:
        UpdateWeights(collector, hook).register(trainer)
        assert trainer.update_weights_interval == 0  # the hook pushes instead
    trainer.train()
    assert trainer.batches == 6 and len(calls) == pushes
    with pytest.raises(ValueError, match="another collector"):
        UpdateWeights(dqn_parts()[1]).register(trainer)
    with pytest.raises(ValueError, match="update_weights_interval must be a positive int"):
        UpdateWeights(collector, 0)


def test_log_scalar_reduces_the_real_steps_of_a_batch():
    reward = torch.tensor([[1.0, 2.0, 0.0], [4.0, 0.0, 0.0]]).unsqueeze(-1)
    mask = torch.tensor([[True, True, False], [True, False, False]])  # split_trajs padding left out
    batch = TensorDict({("next", "reward"): reward, ("collector", "mask"): mask, "action": torch.ones(2, 3, 2)},
                       batch_size=[2, 3])
    real = torch.tensor([1.0, 2.0, 4.0])
    out = LogScalar()(batch)
    assert out == {"r_training": pytest.approx(float(real.mean())), "r_training_std": pytest.approx(float(real.std()))}
    assert LogScalar(("next", "reward"), "best", reduction="max", include_std=False)(batch) == {"best": 4.0}
    assert LogScalar("action", reduction="sum", include_std=False)(batch) == {"action": 6.0}  # 3 real steps x 2
    assert LogScalar(reward_key=("next", "reward"), logname="r")(batch)["r"] == pytest.approx(7 / 3)
    with pytest.raises(KeyError, match="no 'nope'; its keys: action, collector/mask, next/reward"):
        LogScalar("nope")(batch)
    with pytest.raises(ValueError, match="reduction must be one of mean, sum, min, max"):
        LogScalar(reduction="median")


def test_log_validation_reward_against_a_hand_computed_rollout():
    def policy(td):
        return td.set("action", (td["observation"][..., 2] > 0).long())

    hook = LogValidationReward(record_interval=1, record_frames=300, frame_skip=2, policy_exploration=policy,
                               environment=CartPoleEnv(batch_size=[3], seed=11), out_keys={("next", "reward"): "r"},
                               log_keys=[("next", "reward"), ("next", "done")], suffix="_eval")
    out = hook()
    rollout = CartPoleEnv(batch_size=[3], seed=11).rollout(300, policy, break_when_any_done=False)
    reward, done = rollout["next", "reward"][..., 0], rollout["next", "done"][..., 0]
    returns = []  # one per trajectory: cut at each done, the last ones unfinished
    for env_i in range(3):
        total = 0.0
        for t in range(300):
            total += float(reward[env_i, t])
            if done[env_i, t] or t == 299:
                returns.append(total)
                total = 0.0
    assert out["r_eval"] == pytest.approx(float(reward.mean()) / 2)
    assert out["total_r_eval"] == pytest.approx(sum(returns) / len(returns))
    assert out["next/done_eval"] == pytest.approx(float(done.float().mean()))
    assert len(split_trajectories(rollout)) == len(returns)
    with pytest.raises(TypeError, match="missing environment="):
        LogValidationReward(record_interval=1, record_frames=1, policy_exploration=policy)


def test_torchrl_keywords_map_or_are_refused_naming_the_rlbench_way():
    _, collector, loss, optim = dqn_parts()

    def make(**kw):
        return Trainer(collector=collector, loss_module=loss, optimizer=optim, progress_bar=False, **kw)

    assert make(clip_grad_norm=True, clip_norm=5).clip_grad_norm == 5.0
    assert make(clip_grad_norm=True).clip_grad_norm == 100.0  # TorchRL's default clip_norm
    assert make(clip_grad_norm=False).clip_grad_norm is None
    assert make(clip_norm=2.5).clip_grad_norm == 2.5
    assert make(clip_grad_norm=0.5).clip_grad_norm == 0.5  # rlbench's own spelling
    with pytest.raises(ValueError, match="clip_grad_norm=False with clip_norm clamps each gradient value"):
        make(clip_grad_norm=False, clip_norm=1.0)
    with pytest.raises(TypeError, match="give the max gradient norm once"):
        make(clip_grad_norm=0.5, clip_norm=1.0)
    with pytest.raises(ValueError, match=r"frame_skip=4 is not supported: rlbench counts frames as the env steps"):
        make(frame_skip=4)
    with pytest.raises(TypeError, match=r"save_trainer_file= is TorchRL's and not supported: .*trainer.save\(path\)"):
        make(save_trainer_file="x.pt")
    with pytest.raises(TypeError, match=r"save_trainer_interval= .*post_steps hook"):
        make(save_trainer_interval=100)
    with pytest.raises(TypeError, match=r"async_collection= .*Collector\(\.\.\., replay_buffer=rb\)\.start\(\)"):
        make(async_collection=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        make(bogus=1)
    with pytest.raises(TypeError, match="give loss or loss_module"):
        Trainer(collector, loss, optim, loss_module=loss)
    with pytest.raises(TypeError, match="looks like TorchRL's positional order"):
        Trainer(collector, 1000, 1, loss)
    with pytest.raises(TypeError, match="missing optimizer"):
        Trainer(collector=collector, loss_module=loss)
    with pytest.raises(ValueError, match="total_frames must be a positive int"):
        make(total_frames=0)


def test_total_frames_ends_training_before_the_collector_does():
    _, collector, loss, optim = dqn_parts(n_batches=10)
    trainer = Trainer(collector=collector, total_frames=3 * FPB + 1, loss_module=loss, optimizer=optim,
                      progress_bar=False)
    trainer.train()
    assert trainer.batches == 4 and trainer.frames == 4 * FPB  # whole batches, as TorchRL counts
    trainer.shutdown()
