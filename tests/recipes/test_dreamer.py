"""rlbench.recipes.dreamer: a tiny run on real DMC pixels, its schedule, the filtering policy, bad input."""
import math

import pytest
import torch
from tensordict import TensorDict

from rlbench.cli import main
from rlbench.modules import ExplorationType, ObsEncoder, set_exploration_type
from rlbench.recipes import dreamer, make_env
from rlbench.trainers import load_checkpoint, read_csv_log

ALGO = "dreamer"

TINY = dict(env="dmc:cartpole-swingup", frames=120, batch_size=4, batch_length=8, cnn_depth=4, belief_dim=16,
            state_dim=4, rssm_hidden=16, mlp_units=16, horizon=3, eval_episodes=2, eval_max_steps=6)
"""About 5 s on real 64x64 DMC frames: 40 random frames, then 5 blocks of one update."""

MODEL_LOSSES = ("loss_model_kl", "loss_model_reco", "loss_model_reward")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    config = dreamer.Config(**TINY, out_dir=str(tmp_path_factory.mktemp("dreamer")))
    return config, dreamer.train(config, progress=False)


def test_tiny_run_trains_every_loss_in_every_block_and_writes_its_files(tiny_run):
    config, results = tiny_run
    plan = dreamer.schedule(config)
    assert plan == {"prefill": 40, "frames_per_batch": 20, "updates_per_block": 1}
    assert results.algo == "dreamer" and results.frames == 120 and results.eval_episodes == 2
    assert set(results.files) == {"checkpoint", "curve", "results", "report", "logs"}
    logs = read_csv_log(results.files["logs"])  # the run's logger: a CSV in the run directory
    blocks = list(range(plan["prefill"], 121, plan["frames_per_batch"]))  # 40, 60, ..., 120: five blocks
    for name in MODEL_LOSSES + ("loss_actor", "loss_value", "kl", "imagined_return"):
        assert [step for step, _ in logs[name]] == blocks, name
        assert all(math.isfinite(v) for _, v in logs[name])
    # free nats: the KL term never goes below 3 nats, the KL itself may
    assert min(v for _, v in logs["loss_model_kl"]) >= 3.0
    # reconstruction: 0.5 * sum over 3x64x64 pixels of squared errors, frames in [0, 1]
    assert 0 < logs["loss_model_reco"][0][1] < 0.5 * 3 * 64 * 64
    # a cap of 6 agent steps: cartpole's reward is in [0, 1] per env step, 2 env steps per agent step
    assert 0 <= results.final_eval_return <= 6 * 2
    assert [step for step, _ in logs["eval/return"]] == [120]


def test_checkpoint_restores_the_evaluated_policy(tiny_run):
    config, results = tiny_run
    models = dreamer.make_models(dreamer.make_dreamer_env(config.env, config), config)
    optimizers = {f"{name}_optimizer": torch.optim.Adam(net.parameters()) for name, net in (
        ("model", models.world_model), ("actor", models.actor), ("value", models.value))}
    state = load_checkpoint(results.files["checkpoint"], world_model=models.world_model, actor=models.actor,
                            value=models.value, **optimizers)
    assert state["config"]["env"] == "dmc:cartpole-swingup" and state["frames"] == 120
    # each optimiser made one step per update: 5 blocks of 1
    assert {float(s["step"]) for opt in optimizers.values() for s in opt.state.values()} == {5.0}
    assert optimizers["model_optimizer"].param_groups[0]["lr"] == config.model_lr
    # the restored policy evaluates to the recorded final return (same eval seed as RunTracker)
    mean, _ = dreamer.evaluate(config, models.policy, 2, seed=config.seed + 10_000)
    assert mean == pytest.approx(results.final_eval_return, abs=1e-6)


def test_schedule_keeps_the_papers_cadence_and_scales_short_budgets():
    assert dreamer.schedule(dreamer.Config()) == {"prefill": 2500, "frames_per_batch": 500, "updates_per_block": 100}
    short = dreamer.schedule(dreamer.Config(frames=3000))  # the CLI's short run: 5 blocks of 3 updates
    assert short == {"prefill": 1000, "frames_per_batch": 500, "updates_per_block": 3}
    assert (3000 - short["prefill"]) // short["frames_per_batch"] + 1 >= 4
    assert dreamer.schedule(dreamer.Config(frames=3000, full_cadence_frames=0))["updates_per_block"] == 100
    # Pendulum-v1: 200-step episodes, 100 agent steps at action repeat 2
    assert dreamer.schedule(dreamer.Config(env="Pendulum-v1", frames=20_000))["prefill"] == 500


class _Recorder(torch.nn.Module):
    """An RSSMPrior stand-in that records the (state, belief, action) it is given and adds 1 to the belief."""

    def __init__(self, prior):
        super().__init__()
        self.prior, self.calls = prior, []
        self.state_dim, self.belief_dim, self.action_dim = prior.state_dim, prior.belief_dim, prior.action_dim

    def forward(self, state, belief, action):
        self.calls.append((state.clone(), belief.clone(), action.clone()))
        m, s, nxt, _ = self.prior(state, belief, action)
        return m, s, nxt, belief + 1.0


def test_policy_carries_the_filter_state_and_resets_it_at_episode_starts():
    env = dreamer.make_dreamer_env("dmc:cartpole-swingup", dreamer.Config(), num_envs=2, seed=0)
    models = dreamer.make_models(env, dreamer.Config(cnn_depth=4, belief_dim=8, state_dim=4, rssm_hidden=8,
                                                     mlp_units=8))
    policy = models.policy
    policy.prior = _Recorder(policy.prior)
    td, actions = env.reset(), []
    with set_exploration_type(ExplorationType.RANDOM):
        for _ in range(3):
            out = policy(td)
            actions.append(out["action"].clone())
            _, td = env.step_and_maybe_reset(out)
        calls = policy.prior.calls
        assert all(bool((x == 0).all()) for x in calls[0])  # episode start: zero state, belief, previous action
        # through the TensorDict: the belief goes 0 -> 1 -> 2, the previous action is the one taken
        assert [float(c[1][0, 0]) for c in calls] == [0.0, 1.0, 2.0]
        assert torch.equal(calls[1][2], actions[0]) and torch.equal(calls[2][2], actions[1])
        # sub-env 1 starts a new episode: its filter state is zeroed, sub-env 0's carries on
        td["is_init"] = torch.tensor([[False], [True]])
        out = policy(td)
    state, belief, action = policy.prior.calls[-1]
    assert float(belief[0, 0]) == 3.0 and bool((belief[1] == 0).all()) and bool((action[1] == 0).all())
    assert bool((state[1] == 0).all()) and not bool((state[0] == 0).all())
    assert out["action"].shape == (2, 1) and bool((out["action"].abs() <= 1).all())
    env.close()


def test_policy_is_deterministic_in_evaluation_and_explores_in_training():
    env = dreamer.make_dreamer_env("dmc:cartpole-swingup", seed=0)
    cfg = dreamer.Config(cnn_depth=4, belief_dim=8, state_dim=4, rssm_hidden=8, mlp_units=8, expl_noise=0.3)
    policy = dreamer.make_models(env, cfg).policy
    td = env.reset()
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        a, b = policy(td.clone())["action"], policy(td.clone())["action"]
    assert torch.equal(a, b)
    with set_exploration_type(ExplorationType.RANDOM):
        c, d = policy(td.clone())["action"], policy(td.clone())["action"]
    assert not torch.equal(c, d)
    uint8 = td.clone().set("pixels", (td["pixels"] * 255).round().to(torch.uint8))  # the replay's frames
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        assert torch.allclose(policy(uint8)["action"], a, atol=1e-2)
    env.close()


def test_env_gives_unstacked_64x64_float_frames_with_action_repeat():
    env = dreamer.make_dreamer_env("dmc:cartpole-swingup", dreamer.Config(action_repeat=8), seed=0)
    spec = env.observation_spec
    assert spec["pixels"].shape == (3, 64, 64) and spec["pixels"].dtype == torch.float32 and "is_init" in spec
    steps = env.rollout(300)  # stops at the episode's end
    assert bool(steps["next", "truncated"][-1]) and steps.shape == (125,)  # 1000 env steps / 8
    assert 0 <= float(steps["next", "pixels"].min()) and float(steps["next", "pixels"].max()) <= 1
    env.close()


def test_frames_that_are_not_64x64_are_refused_naming_key_shape_and_fix():
    with pytest.raises(ValueError, match=r"'pixels' must hold float frames \[\*batch, 3, 64, 64\].*found shape "
                                         r"\(3, 84, 84\).*Resize\(64, 64\).*pixel_size=64"):
        dreamer.make_models(make_env("dmc:cartpole-swingup", pixels=True, pixel_size=84, frame_stack=1),
                            dreamer.Config())
    # make_env's uint8 DMC frames at 64x64 are fine: the policy and the replay scale them
    env = make_env("dmc:cartpole-swingup", pixels=True, pixel_size=64, frame_stack=1)
    assert env.observation_spec["pixels"].dtype == torch.uint8
    dreamer.make_models(env, dreamer.Config(cnn_depth=4, belief_dim=8, state_dim=4, rssm_hidden=8, mlp_units=8))
    with pytest.raises(ValueError, match="ObsEncoder: 'pixels' must hold"):
        ObsEncoder().check_spec(env.observation_spec["pixels"])  # the module alone wants floats


def test_cli_reports_the_frame_size_error_and_refuses_state_observations(capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", "dreamer", "--env", "dmc:cartpole-swingup", "--frames", "40", "--config", "pixel_size=32",
              "--no-progress"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "found shape (3, 32, 32)" in message and "Resize(64, 64)" in message and "pixel_size=64" in message
    with pytest.raises(SystemExit):
        main(["train", "dreamer", "--config", "pixels=false"])
    assert "pixels=False is invalid; expected True" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"frame_stack=3 is invalid; expected 1"):
        dreamer.Config(frame_stack=3)


def test_cli_trains_from_the_rendered_frames_of_a_gymnasium_id(tmp_path, capsys):
    pytest.importorskip("pygame")
    tiny = [f"{k}={v}" for k, v in TINY.items() if k not in ("env", "frames")]
    assert main(["train", "dreamer", "--env", "Pendulum-v1", "--frames", "60", "--out", str(tmp_path),
                 "--no-progress", "--config", "pixels=true", *tiny]) == 0
    out = capsys.readouterr().out
    assert "dreamer on Pendulum-v1: 60 env steps" in out and "checkpoint:" in out
    # Pendulum's reward is in [-16.3, 0] per env step: 6 agent steps of 2 env steps
    logs = read_csv_log(next(tmp_path.glob("dreamer-Pendulum-v1-*/logs/scalars.csv")))
    assert -16.3 * 12 <= logs["eval/final_return"][0][1] <= 0 and len(logs["loss_model_reco"]) >= 4


def test_cli_print_config_shows_the_published_defaults(capsys):
    assert main(["train", "dreamer", "--print-config"]) == 0
    out = capsys.readouterr().out
    for entry in ("batch_size = 50", "batch_length = 50", "horizon = 15", "model_lr = 0.0006",
                  "actor_lr = 8e-05", "free_nats = 3.0", "action_repeat = 2", "pixel_size = 64"):
        assert entry.replace(" ", "") in out.replace(" ", ""), entry


def test_replay_keeps_each_frame_once_as_uint8():
    config = dreamer.Config(**TINY)
    env = dreamer.make_dreamer_env(config.env, config, seed=0)
    batch = env.rollout(10, break_when_any_done=False)
    stored = dreamer._stored(batch)
    assert stored["next", "pixels"].dtype == torch.uint8 and "pixels" not in stored.keys()
    back = dreamer._as_float_frames(stored.clone())
    assert torch.allclose(back["next", "pixels"], batch["next", "pixels"], atol=0.5 / 255 + 1e-6)
    assert torch.equal(back["action"], batch["action"]) and isinstance(back, TensorDict)
    env.close()
