"""Tests every recipe of a family passes alike, parametrized over ``algo``.

The conftest fixtures ``recipe`` and ``small`` build that algorithm's module and small Config.

Algorithm-specific behaviour stays in test_recipe_<algo>.py.
"""
import pytest

from rlbench.recipes import evaluate, make_env
from rlbench.trainers import load_checkpoint, read_csv_log

CONTINUOUS = ["ddpg", "td3", "sac", "redq"]
"""The off-policy recipes for bounded continuous actions, all tested on native:Pendulum."""


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_on_policy_short_run_on_native_cartpole(algo, recipe, small):
    results = recipe.train(small(eval_every=256), progress=False)
    assert results.algo == algo and results.env == "native:CartPole"
    assert results.frames == 512 and results.eval_episodes == 3
    assert [row["frames"] for row in results.curve] == [256, 512]
    assert results.final_eval_return >= 8 and results.curve[-1]["eval_return"] >= 8  # CartPole's shortest episode
    assert results.run_dir is None and results.files == {}


@pytest.mark.parametrize("algo, steps_per_env", [("ppo", 64), ("a2c", 16)])
def test_on_policy_continuous_actions_on_gymnasium_pendulum(algo, steps_per_env, recipe, small, pendulum_worst):
    frames = 2 * steps_per_env * 2
    results = recipe.train(small(env="Pendulum-v1", frames=frames, num_envs=2, steps_per_env=steps_per_env,
                                 eval_episodes=2), progress=False)
    assert results.frames == frames and pendulum_worst <= results.final_eval_return < 0


@pytest.mark.parametrize("algo", ["ppo"] + CONTINUOUS)
def test_same_seed_same_run(algo, recipe, small):
    frames = 256 if algo == "ppo" else 200
    a = recipe.train(small(frames=frames, seed=3), progress=False)
    b = recipe.train(small(frames=frames, seed=3), progress=False)
    assert a.final_eval_return == b.final_eval_return
    if algo in CONTINUOUS:  # Pendulum's returns are real-valued: another seed gives another one
        assert recipe.train(small(frames=frames, seed=4), progress=False).final_eval_return != a.final_eval_return


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])  # REDQ's checkpoint test also checks its ensemble
def test_checkpoint_restores_the_evaluated_actor(algo, recipe, small, tmp_path):
    config = small(out_dir=str(tmp_path), frames=200)
    results = recipe.train(config, progress=False)
    actor, _ = recipe.make_models(make_env("native:Pendulum"), config)
    state = load_checkpoint(results.files["checkpoint"], actor=actor)
    assert state["config"]["env"] == "native:Pendulum" and state["frames"] == 200
    # the restored actor evaluates to the recorded final return (same eval seed as RunTracker)
    assert evaluate("native:Pendulum", actor, 2, seed=config.seed + 10_000)[0] == pytest.approx(
        results.final_eval_return, abs=1e-6)
    logs = read_csv_log(results.files["logs"])
    assert [step for step, _ in logs["eval/return"]] == [200]


@pytest.mark.parametrize("algo", ["ddpg", "td3", "redq"])  # SAC learns discrete actions instead
def test_discrete_actions_are_refused_by_name(algo, recipe, small):
    with pytest.raises(TypeError, match=rf"{algo} needs a bounded continuous action space .* Categorical"):
        recipe.train(small(env="native:CartPole"), progress=False)


@pytest.mark.parametrize("algo", ["td3", "redq"])  # DDPG's runs each exploration noise, SAC's a fractional utd
def test_gymnasium_pendulum(algo, recipe, small, pendulum_worst):
    results = recipe.train(small(env="Pendulum-v1", frames=200, utd_ratio=0.1), progress=False)
    assert results.frames == 200 and pendulum_worst <= results.final_eval_return <= 0


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_train_curve_is_the_same_with_and_without_a_progress_bar(algo, recipe, small, capsys):
    quiet = recipe.train(small(seed=1), progress=False)
    shown = recipe.train(small(seed=1), progress=True)
    assert "frames" in capsys.readouterr().err  # the bar was drawn (on stderr)
    assert quiet.train_curve and quiet.train_curve == shown.train_curve  # training returns tracked either way
    assert (quiet.final_eval_return, quiet.curve[-1]["eval_return"]) == (shown.final_eval_return,
                                                                          shown.curve[-1]["eval_return"])
    first_frames, first_return = quiet.train_curve[0]
    if algo == "sac":  # Pendulum's 200-step episodes: the first one ends within the first 200 frames
        assert first_frames == 200 and -16.3 * 200 <= first_return <= 0
