"""Trainer: hook order and contracts, errors, logging, evaluation, progress bar, prioritized replay."""
import io

import pytest
import torch
from _setups import FPB, dqn, ppo

from rlbench.buffers import LazyTensorStorage, PrioritizedReplayBuffer
from rlbench.envs import CartPoleEnv
from rlbench.testing import ListLogger
from rlbench.trainers import STAGES, CSVLogger, Trainer, evaluate_policy, read_csv_log


def push_right(td):
    return td.set("action", torch.ones(td.batch_size, dtype=torch.long))


def test_hooks_run_in_documented_order_once_per_batch():
    trainer = ppo(2, batch_size=None, num_epochs=1, eval_env=CartPoleEnv(), eval_interval=FPB, eval_episodes=1)
    calls = []
    for stage in STAGES:
        trainer.register_op(stage, lambda *args, s=stage: calls.append(s))
    trainer.train()
    one_batch = ["batch_process", "pre_steps_log", "pre_optim_steps", "process_optim_batch", "post_loss",
                 "post_optim", "post_steps", "eval", "post_steps_log"]
    assert calls == one_batch * 2 and list(STAGES) == one_batch


def test_hook_arguments_and_replacements():
    trainer = ppo(1, batch_size=16, num_epochs=2)
    seen = {}

    def scale_reward(batch):
        seen["batch_shape"] = batch.shape
        batch = batch.clone()
        batch["next", "reward"] = batch["next", "reward"] * 10
        return batch

    def check_sub(sub):
        seen.setdefault("sub_shapes", []).append(sub.shape)
        seen.setdefault("rewards", []).append(sub["next", "reward"])
        assert "advantage" in sub.keys()  # the value estimator ran on the batch before the epochs

    def double_loss(loss_td):
        return loss_td.apply(lambda x: x * 2)

    totals = []
    trainer.register_op("batch_process", scale_reward)
    trainer.register_op("process_optim_batch", check_sub)  # returns None: the minibatch is kept
    trainer.register_op("post_loss", double_loss)
    trainer.register_op("post_loss", lambda td: totals.append(td["loss_objective"].detach()))
    trainer.train()
    assert seen["batch_shape"] == (4, FPB // 4)
    assert seen["sub_shapes"] == [torch.Size([16])] * 4  # 2 epochs x 32 frames / 16
    assert all(bool((r == 10).all()) for r in seen["rewards"])  # CartPole's reward 1, scaled
    assert len(totals) == trainer.updates == 4


def test_register_op_errors():
    trainer = ppo(1)
    with pytest.raises(ValueError, match=r"unknown stage 'post_optimise'; valid stages: batch_process, "
                                         r"pre_steps_log, .*post_steps_log"):
        trainer.register_op("post_optimise", lambda: None)
    with pytest.raises(TypeError, match=r"register_op\('post_optim'\): expected a callable, got int"):
        trainer.register_op("post_optim", 3)
    trainer.register_op("post_steps_log", lambda batch: 1.5)
    with pytest.raises(TypeError, match="a 'post_steps_log' hook .* must return a mapping of scalars to log or "
                                        "None, got float"):
        trainer.train()


def test_constructor_errors():
    trainer = dqn(1)
    with pytest.raises(ValueError, match=r"needs batch_size=\.\.\."):
        Trainer(trainer.collector, trainer.loss, trainer.optimizers[0], trainer.replay_buffer)
    with pytest.raises(ValueError, match="num_epochs must be a positive int, got 0"):
        Trainer(trainer.collector, trainer.loss, trainer.optimizers[0], num_epochs=0)
    with pytest.raises(TypeError, match="optimizer #0 must be a torch.optim.Optimizer, got str"):
        Trainer(trainer.collector, trainer.loss, "adam")


def test_logs_training_metrics_and_hook_scalars_to_csv(tmp_path):
    logger = CSVLogger(tmp_path, "run")
    trainer = dqn(6, logger=logger, log_interval=2 * FPB)
    trainer.register_op("pre_steps_log", lambda batch: {"batch/reward_sum": batch["next", "reward"].sum()})
    losses = []
    trainer.register_op("post_loss", lambda td: losses.append(float(td["loss_value"].detach())))
    trainer.train()
    logger.close()
    log = read_csv_log(logger.path)
    assert [s for s, _ in log["batch/reward_sum"]] == [FPB * i for i in range(1, 7)]
    assert all(v == FPB for _, v in log["batch/reward_sum"])  # CartPole pays 1 per step
    steps = [s for s, _ in log["train/loss_value"]]
    # optimisation starts with the first batch (min_buffer_size defaults to the sample size, 16)
    assert steps == [2 * FPB, 4 * FPB, 6 * FPB]
    # each logged value is the mean over the updates of its interval: 2 batches x 2 steps
    expected = [sum(losses[i:i + 4]) / 4 for i in range(0, 12, 4)]
    assert [v for _, v in log["train/loss_value"]] == pytest.approx(expected, rel=1e-6)
    assert log["train/updates"][-1] == (6 * FPB, 12.0)
    assert "train/grad_norm" in log and "train/episode_return" in log


def test_episode_returns_follow_episodes_across_batches():
    trainer = ppo(8)
    batches = []
    trainer.register_op("batch_process", lambda batch: batches.append(batch.clone()))
    trainer.train()
    # CartPole pays 1 per step, so an episode's return is its length: the env's own step counter
    # at the episode's last step, however many batches the episode spanned
    done = torch.cat([b["next", "done"].reshape(4, -1) for b in batches], 1)
    count = torch.cat([b["next", "step_count"].reshape(4, -1) for b in batches], 1)
    expected = count[done].double().tolist()
    assert max(expected) > FPB // 4  # some episodes did span a batch boundary
    assert sorted(trainer.episodes.recent) == sorted(expected)


def test_trainer_evaluates_on_schedule_and_runs_eval_hooks():
    logger = ListLogger()
    trainer = ppo(4, eval_env=CartPoleEnv(), eval_interval=2 * FPB, eval_episodes=2, logger=logger)
    trainer.register_op("eval", lambda: {"eval/custom": trainer.last_eval["eval/return"] + 1})
    trainer.train()
    evals = [(v, s) for n, v, s in logger.rows if n == "eval/return"]
    assert [s for _, s in evals] == [2 * FPB, 4 * FPB] and trainer.evaluations == 2
    custom = [(v, s) for n, v, s in logger.rows if n == "eval/custom"]
    assert [v for v, _ in custom] == [v + 1 for v, _ in evals]
    # the evaluation is reproducible: reseeded from the trainer's seed
    env = CartPoleEnv()
    env.set_seed(trainer.seed + 1 + 1)
    with torch.no_grad():
        expected = evaluate_policy(env, trainer.collector.policy, 2)
    assert evals[-1][0] == pytest.approx(sum(expected) / 2)
    with pytest.raises(RuntimeError, match="no eval_env"):
        ppo(1).evaluate()


def test_progress_bar_in_text_mode_shows_frames_return_and_loss():
    out = io.StringIO()
    trainer = ppo(6, progress_bar={"file": out, "desc": "ppo"})
    trainer.train()
    text = out.getvalue()
    assert "ppo" in text and "192/192" in text and "frames" in text
    assert "episode_return=" in text and "loss=" in text


def test_train_in_chunks_and_repr():
    trainer = ppo(4)
    trainer.train(batches=1)
    assert trainer.batches == 1 and trainer.frames == FPB
    trainer.train(batches=2)
    trainer.train()
    assert trainer.batches == 4 and trainer.frames == 4 * FPB
    with pytest.raises(ValueError, match="batches must be a positive int or None"):
        trainer.train(batches=0)
    loss_name = type(trainer.loss).__name__  # the clipped PPO loss, whatever its class is called
    assert repr(trainer).startswith(f"Trainer(on-policy, loss={loss_name}, frames=128, batches=4, updates=16")


def test_prioritized_replay_priorities_are_updated_from_the_loss():
    trainer = dqn(3)
    rb = PrioritizedReplayBuffer(alpha=0.7, beta=0.5, storage=LazyTensorStorage(1000))
    trainer2 = Trainer(trainer.collector, trainer.loss, trainer.optimizers[0], rb, batch_size=16, progress_bar=False)
    trainer2._ops["batch_process"] = list(trainer._ops["batch_process"])
    updated = []
    real = rb.update_priority
    rb.update_priority = lambda index, priority: (updated.append((index.clone(), priority.clone())),
                                                  real(index, priority))
    trainer2.train()
    assert len(updated) == trainer2.updates == 3
    index, priority = updated[-1]
    assert index.shape == (16,) and priority.shape == (16,) and bool((priority > 0).all())


def test_training_monitor_widget_is_a_trainer_logger():
    pytest.importorskip("anywidget")
    from rlbench.widgets import TrainingMonitor

    monitor = TrainingMonitor(title="test")
    trainer = ppo(3, logger=monitor, log_interval=FPB)
    trainer.train()
    monitor.close()
    assert [s for s, _ in monitor.history["train/loss"]] == [FPB, 2 * FPB, 3 * FPB]
    assert monitor.history["train/loss"][-1][1] == pytest.approx(trainer.last_losses["loss"])
