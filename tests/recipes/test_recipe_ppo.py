"""The PPO recipe end to end: short runs on discrete and continuous envs, files, seeding, learning.

(Named test_recipe_ppo.py: tests/objectives/test_ppo.py exists and tests/ has no __init__.py files.)
"""
from rlbench.recipes import evaluate, make_env, ppo
from rlbench.trainers import load_checkpoint, read_csv_log

ALGO = "ppo"  # what the conftest fixtures (small, recipe) build


def test_writes_checkpoint_logs_and_report(tmp_path, small):
    config = small(out_dir=str(tmp_path), eval_every=256)
    results = ppo.train(config, progress=False)
    assert results.run_dir.startswith(str(tmp_path))
    env = make_env("native:CartPole", 2)
    actor, critic = ppo.make_models(env, config)
    state = load_checkpoint(results.files["checkpoint"], actor=actor, critic=critic)
    assert state["config"]["env"] == "native:CartPole" and state["frames"] == 512
    # the restored actor evaluates to the recorded final return
    assert evaluate("native:CartPole", actor, 3, seed=config.seed + 10_000)[0] == results.final_eval_return
    assert evaluate("native:CartPole", actor, 3, seed=config.seed + 20_000)[0] == results.curve[-1]["eval_return"]
    logs = read_csv_log(results.files["logs"])
    assert [step for step, _ in logs["eval/return"]] == [256, 512]
    assert [step for step, _ in logs["loss/objective"]] == [128, 256, 384, 512]  # one row per 128-frame batch
    assert "data:image/png;base64," in open(results.files["report"]).read()


def test_stops_when_the_target_is_reached(small):
    results = ppo.train(small(frames=2048, eval_every=256, target_return=0.0), progress=False)
    assert results.solved_frames == 256 and results.frames == 256  # every return is >= 0: solved at once
    assert results.solved_time == results.curve[0]["train_time"] and len(results.curve) == 1
    # the final evaluation is a fresh one (other start states), not the evaluation that stopped the run
    assert results.final_eval_return != results.curve[0]["eval_return"]


def test_without_periodic_evaluation_the_final_one_is_the_curve(small):
    results = ppo.train(small(frames=256, eval_every=0), progress=False)
    assert len(results.curve) == 1 and results.curve[0]["eval_return"] == results.final_eval_return


def test_make_models_reads_the_specs():
    actor, critic = ppo.make_models(make_env("native:Acrobot", 2), ppo.Config(hidden_sizes=(16,)))
    td = critic(actor(make_env("native:Acrobot", 2).reset()))
    assert td["logits"].shape == (2, 3) and td["state_value"].shape == (2, 1)
    assert actor.module[0].module[0].in_features == 6  # Acrobot's observation size


def test_learns_native_cartpole():
    # a real learning signal in a few seconds: the torch-native batched env makes frames cheap
    config = ppo.Config(env="native:CartPole", frames=16384, num_envs=32, eval_every=4096, eval_episodes=10,
                        target_return=200.0)
    results = ppo.train(config, progress=False)
    assert results.solved_frames is not None, results.curve
