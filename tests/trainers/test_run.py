"""RunTracker: evaluation schedule and seeds, early stop, training returns, logs, run files and report."""
import base64
import re
import time
from dataclasses import dataclass

import pytest
import torch

from rlbench.collectors import EpisodeReturns
from rlbench.testing import ListLogger
from rlbench.trainers import RunTracker, load_checkpoint, read_csv_log
from rlbench.trainers.run import FINAL_EVAL_SEED_OFFSET, PERIODIC_EVAL_SEED_OFFSET


@dataclass
class TinyConfig:
    env: str = "native:CartPole"
    frames: int = 100
    seed: int = 3
    eval_episodes: int = 3
    eval_every: int = 40
    target_return: "float | None" = None
    out_dir: "str | None" = None


class FakeEvaluation:
    """Records each call; the "mean return" is the call's index, so a test can tell evaluations apart."""

    def __init__(self, seconds=0.0):
        self.calls, self.seconds = [], seconds

    def __call__(self, policy, num_episodes, *, seed):
        self.calls.append((policy, num_episodes, seed))
        time.sleep(self.seconds)
        return float(len(self.calls)), 0.5


def test_evaluates_on_schedule_with_its_seeds_and_pauses_the_clock():
    evaluate = FakeEvaluation(seconds=0.05)
    run = RunTracker("demo", TinyConfig(), evaluate=evaluate)
    assert [run.step(f, "policy") for f in (20, 40, 60, 100)] == [False] * 4
    assert [row["frames"] for row in run.curve] == [40, 100]  # 80 was skipped over: one evaluation at 100
    results = run.finish("policy", 100, models={})
    assert [row["frames"] for row in results.curve] == [40, 100]  # the final evaluation is not a second row at 100
    seeds = [seed for _, _, seed in evaluate.calls]
    assert seeds == [3 + PERIODIC_EVAL_SEED_OFFSET] * 2 + [3 + FINAL_EVAL_SEED_OFFSET]
    assert all(n == 3 for _, n, _ in evaluate.calls) and results.final_eval_return == 3.0
    assert results.solved_frames is None and results.run_dir is None and results.files == {}
    assert results.wall_time - results.train_time >= 3 * 0.05  # the evaluations' time is not training time


def test_stops_once_a_periodic_evaluation_reaches_the_target():
    run = RunTracker("demo", TinyConfig(target_return=2.0), evaluate=FakeEvaluation())
    assert run.step(40, "policy") is False  # first evaluation: 1.0
    assert run.step(80, "policy") is True  # second: 2.0
    assert (run.solved_frames, run.solved_time == run.curve[-1]["train_time"]) == (80, True)


def test_refuses_a_config_without_the_common_fields_and_a_missing_evaluator():
    @dataclass
    class Bare:
        lr: float = 1e-3

    with pytest.raises(TypeError, match=r"lacks the common fields \['env', 'frames', "):
        RunTracker("demo", Bare(), evaluate=FakeEvaluation())
    with pytest.raises(TypeError, match=r"evaluate must be a callable \(policy, num_episodes, seed=\.\.\.\)"):
        RunTracker("demo", TinyConfig(), evaluate=None)


def test_logs_values_training_returns_and_evaluations_in_order():
    logger, episodes = ListLogger(), EpisodeReturns()
    run = RunTracker("demo", TinyConfig(), logger=logger, evaluate=FakeEvaluation(), episodes=episodes)
    run.step(20, "policy", {"loss": torch.tensor(2.0, requires_grad=True)})
    assert logger.rows == [("loss", 2.0, 20)] and run.train_curve == []  # no episode has ended yet
    episodes.add(torch.ones(2, 3), torch.tensor([[0, 0, 1], [0, 0, 1]]).bool(), torch.tensor([[0, 0, 0], [1, 1, 1]]))
    run.step(40, "policy", {"loss": 1.0})
    assert [name for name, _, step in logger.rows if step == 40] == ["loss", "train/episode_return", "eval/return",
                                                                    "eval/return_std"]
    assert run.train_curve == [(40, 3.0)] and logger.series("train/episode_return") == [(40, 3.0)]
    run.step(60, "policy", {"train/episode_return": 7.0})  # a value given under that name wins
    assert run.train_curve[-1] == (60, 7.0)
    run.finish("policy", 70, models={})
    assert [name for name, _, step in logger.rows if step == 70] == ["eval/return", "eval/return_std",
                                                                    "eval/final_return"]


def test_run_files_and_report(tmp_path):
    net = torch.nn.Linear(4, 2)
    episodes = EpisodeReturns()
    episodes.add(torch.ones(1, 4), torch.tensor([[False, False, False, True]]), torch.zeros(1, 4, dtype=torch.long))
    run = RunTracker("demo", TinyConfig(out_dir=str(tmp_path)), evaluate=FakeEvaluation(), episodes=episodes)
    run.step(40, "policy", {"loss": 1.0})
    results = run.finish("policy", 100, models={"net": net})
    assert results.run_dir.startswith(str(tmp_path)) and results.train_curve == [(40, 4.0)]
    assert set(results.files) == {"checkpoint", "curve", "results", "report", "logs"}
    fresh = torch.nn.Linear(4, 2)
    state = load_checkpoint(results.files["checkpoint"], net=fresh)
    assert torch.equal(fresh.weight, net.weight) and state["frames"] == 100 and state["config"]["seed"] == 3
    logs = read_csv_log(results.files["logs"])
    assert logs["loss"] == [(40, 1.0)] and logs["eval/return"] == [(40, 1.0), (100, 2.0)]
    html = open(results.files["report"]).read()
    png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html).group(1))
    assert png.startswith(b"\x89PNG")
    assert "final mean evaluation return: 2.0 over 3 episodes" in html
