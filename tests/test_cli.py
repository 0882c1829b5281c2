"""The rlbench command: help, errors naming what was wrong, a full run's files and last line."""
import os
import re
import subprocess
import sys

import pytest
import torch

from rlbench.cli import config_help, main
from rlbench.recipes import ALGORITHMS

ALGOS = ", ".join(sorted(ALGORITHMS))  # other recipes register themselves: never hard-code the list


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_train_help_lists_algorithms_and_their_fields(capsys):
    code, out, _ = run_main(["train", "--help"], capsys)
    assert code == 0
    assert f"Algorithms: {ALGOS}." in out
    assert all(f"{algo} config fields" in out for algo in ALGORITHMS)
    assert "clip_epsilon (float, default 0.2)" in out and "Clipping range of the probability ratio." in out


def test_algo_help_lists_only_that_algorithm(capsys):
    code, out, _ = run_main(["train", "a2c", "--help"], capsys)
    assert code == 0
    assert "a2c config fields" in out and "ppo config fields" not in out
    assert "clip_epsilon" not in out and "steps_per_env" in out
    assert all("(undocumented)" not in config_help(algo) for algo in ALGORITHMS)


@pytest.mark.parametrize("argv, message", [
    (["train", "nope"], "invalid choice: 'nope'"),
    (["train", "ppo", "--config", "bogus=1"], "unknown config field 'bogus'.*valid fields: env, frames"),
    (["train", "ppo", "--config", "lr=fast"], "config field 'lr' expects float"),
    (["train", "ppo", "--config", "lr"], "'lr' is not of the form key=value"),
    (["train", "ppo", "--frames", "-3"], "expected a positive integer, got '-3'"),
    (["train", "ppo", "--env", "NoSuchEnv-v0"], "unknown env 'NoSuchEnv-v0'.*native:CartPole"),
    # issue 13 item 8: these crashed with a traceback (OverflowError; ValueError/RuntimeError from deep inside
    # training, eval_episodes=0 only after training) or trained with nonsense (gamma=5)
    (["train", "ppo", "--frames", "inf"], r"argument --frames: expected a positive integer, got 'inf'"),
    (["train", "ppo", "--frames", "1e400"], r"argument --frames: expected a positive integer, got '1e400'"),
    (["train", "ppo", "--config", "epochs=inf"], r"config field 'epochs' expects int: expected a finite integer, "
                                                 r"got 'inf'"),
    (["train", "ppo", "--config", "lr=-1"], r"ppo\.Config: lr=-1\.0 is invalid; expected a finite number > 0"),
    (["train", "ppo", "--config", "num_envs=0"], r"ppo\.Config: num_envs=0 is invalid; expected an integer >= 1"),
    (["train", "ppo", "--config", "minibatch_size=0"], r"ppo\.Config: minibatch_size=0 is invalid; expected an "
                                                       r"integer >= 1"),
    (["train", "ppo", "--config", "eval_episodes=0"], r"ppo\.Config: eval_episodes=0 is invalid; expected an "
                                                      r"integer >= 1"),
    (["train", "ppo", "--config", "gamma=5"], r"ppo\.Config: gamma=5\.0 is invalid; expected a number in \[0, 1\]"),
    (["train", "ppo", "--seed", "-1"], r"ppo\.Config: seed=-1 is invalid; expected an integer in \[0, 2\*\*63 - 1\]"),
    (["train", "dqn", "--env", "native:Pendulum"], r"dqn needs discrete actions .*'native:Pendulum' has Bounded "
                                                   r"actions"),
    (["train", "ddpg", "--env", "native:CartPole"], r"ddpg needs a bounded continuous action space"),
])
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert re.search(message, err), err


def test_bad_values_are_refused_before_any_training(monkeypatch, capsys):
    from rlbench.recipes import dqn, ppo

    def must_not_train(*args, **kwargs):
        raise AssertionError("train() ran before the arguments were checked")

    monkeypatch.setattr(dqn, "train", must_not_train)
    monkeypatch.setattr(ppo, "train", must_not_train)
    for argv in (["train", "dqn", "--env", "native:Pendulum"], ["train", "ppo", "--config", "eval_episodes=0"]):
        code, out, err = run_main(argv, capsys)
        assert code == 2 and out == ""
        assert len([line for line in err.splitlines() if "error:" in line]) == 1  # one line says what was wrong
        assert "Traceback" not in err


def test_an_unwritable_out_is_refused_before_training(tmp_path, monkeypatch, capsys):
    from rlbench.recipes import ppo

    monkeypatch.setattr(ppo, "train", lambda *a, **k: pytest.fail("trained despite an unwritable --out"))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = run_main(["train", "ppo", "--out", str(blocker)], capsys)
    assert code == 2 and re.search(rf"--out {re.escape(repr(str(blocker)))}: exists and is not a directory", err), err
    code, _, err = run_main(["train", "ppo", "--out", str(blocker / "runs")], capsys)
    assert code == 2 and re.search(rf"--out {re.escape(repr(str(blocker / 'runs')))}: cannot create a directory "
                                   r"there \(", err), err
    monkeypatch.undo()
    fresh = tmp_path / "new" / "runs"
    code = main(["train", "ppo", "--env", "native:CartPole", "--frames", "64", "--out", str(fresh), "--no-progress",
                 "--config", "num_envs=2", "steps_per_env=32", "eval_episodes=1", "minibatch_size=64"])
    assert code == 0 and any(fresh.iterdir())  # a folder that does not exist yet is fine (the check leaves none)


def test_the_check_of_out_leaves_no_folder_behind(tmp_path, monkeypatch, capsys):
    from rlbench.recipes import dqn

    monkeypatch.setattr(dqn, "train", lambda *a, **k: pytest.fail("trained"))
    code, _, _ = run_main(["train", "dqn", "--env", "native:Pendulum", "--out", str(tmp_path / "x" / "y")], capsys)
    assert code == 2 and not (tmp_path / "x").exists()


def test_a_full_run_prints_paths_and_ends_with_the_return(tmp_path, capsys):
    code = main(["train", "a2c", "--env", "native:CartPole", "--frames", "2.56e2", "--seed", "1", "--out",
                 str(tmp_path), "--no-progress", "--config", "eval_episodes=2", "num_envs=4"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    assert re.fullmatch(r"final mean evaluation return: \d+\.\d over 2 episodes", lines[-1])
    paths = dict(re.findall(r"^\s*(checkpoint|logs|curve|report|results): (\S+)$", out, flags=re.M))
    assert set(paths) == {"checkpoint", "logs", "curve", "report", "results"}
    assert all(os.path.exists(p) and p.startswith(str(tmp_path)) for p in paths.values())
    import json

    saved = json.load(open(paths["results"]))
    assert saved["config"]["seed"] == 1 and saved["config"]["num_envs"] == 4 and saved["frames"] == 256
    assert lines[-1].endswith(f"{saved['final_eval_return']:.1f} over 2 episodes")


@pytest.mark.slow  # a fresh interpreter importing torch: several seconds on a busy machine
def test_python_dash_m_rlbench():
    proc = subprocess.run([sys.executable, "-m", "rlbench", "train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and f"Algorithms: {ALGOS}." in proc.stdout


def test_early_stop_is_reported(tmp_path, capsys):
    main(["train", "ppo", "--env", "native:CartPole", "--frames", "1024", "--out", str(tmp_path), "--no-progress",
          "--config", "eval_episodes=2", "eval_every=256", "target_return=0", "num_envs=4", "steps_per_env=64"])
    out = capsys.readouterr().out
    assert "ppo on native:CartPole: 256 env steps" in out
    assert "stopped early: an evaluation reached target_return=0 at 256 env steps" in out
    assert re.search(r"final mean evaluation return: \d+\.\d over 2 episodes\n$", out)


def test_no_progress_still_records_training_returns(tmp_path, capsys):
    # an off-policy recipe: its training returns come from the collector, with or without a progress bar
    main(["train", "ddpg", "--env", "native:Pendulum", "--frames", "400", "--out", str(tmp_path), "--no-progress",
          "--config", "eval_episodes=2", "init_random_frames=200", "batch_size=32", "hidden_sizes=16"])
    out = capsys.readouterr().out
    results = dict(re.findall(r"^\s*(results): (\S+)$", out, flags=re.M))["results"]
    import json

    train_curve = json.load(open(results))["train_curve"]
    assert [frames for frames, _ in train_curve][:1] == [200]  # Pendulum's first 200-step episode ended there
    assert all(-16.3 * 200 <= ret <= 0 for _, ret in train_curve)


def test_print_config_marks_the_env_familys_defaults_and_keeps_the_users(capsys):
    pytest.importorskip("dm_control")
    assert main(["train", "sac", "--env", "dmc:cartpole-swingup", "--config", "batch_size=64",
                 "--print-config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sac config for dmc:cartpole-swingup (env family: dmc;")
    assert "  batch_size = 64\n" in out  # set by the user: no family mark
    assert "  lr = 0.0001  [dmc default]\n" in out and "  hidden_sizes = (1024, 1024)  [dmc default]\n" in out
    assert main(["train", "sac", "--env", "dmc:cartpole-swingup", "--config", "pixels=true", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "  batch_size = 512  [dmc_pixels default]\n" in out and "  pixels = True\n" in out
    assert main(["train", "ppo", "--print-config"]) == 0
    assert "(no env family)" in capsys.readouterr().out


def test_pixels_where_the_suite_has_none_is_refused_before_training(capsys):
    code, _, err = run_main(["train", "sac", "--env", "native:Pendulum", "--config", "pixels=true"], capsys)
    assert code == 2 and "torch-native envs do not render" in err and "'Pendulum-v1'" in err
