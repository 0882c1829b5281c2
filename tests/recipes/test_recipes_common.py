"""Recipe infrastructure: env names, evaluation, Config docs and overrides, results, run files, models.

(Named test_recipes_common.py, not test_common.py: tests/ has no __init__.py files, so two test
modules with one basename collide at collection.)
"""
import base64
import dataclasses
import re
import typing
from dataclasses import dataclass

import pytest
import torch
from tensordict.nn import TensorDictModule

from rlbench.envs import CartPoleEnv, GymEnv, PendulumEnv, step_mdp
from rlbench.recipes import ALGORITHMS, get_recipe
from rlbench.recipes._common import (
    COMMON_FIELDS,
    RecipeConfig,
    apply_overrides,
    config_docs,
    evaluate,
    make_env,
    max_episode_steps,
)
from rlbench.recipes._models import make_encoder, make_stochastic_actor, make_value_network
from rlbench.recipes._run import RunTracker, TrainResults, write_report
from rlbench.specs import Categorical, Composite, Unbounded


@pytest.fixture(autouse=True)
def one_thread():
    # tiny batches: a second intra-op thread only adds wake-up latency on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lean_policy():
    """Push the cart toward the side the pole leans to: lasts tens of steps, varies with the start."""
    return TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])


# ------------------------------------------------------------------------------------------ envs
def test_make_env_native_and_gym():
    native = make_env("native:CartPole", num_envs=5, seed=1)
    assert isinstance(native, CartPoleEnv) and native.batch_size == (5,)
    assert isinstance(make_env("native:Pendulum-v1"), PendulumEnv)  # version suffix accepted
    single = make_env("CartPole-v1", seed=0)
    assert isinstance(single, GymEnv) and single.batch_size == ()
    vec = make_env("CartPole-v1", num_envs=3, seed=0)
    assert vec.batch_size == (3,)
    assert vec.rollout(4, break_when_any_done=False).shape == (3, 4)


def test_make_env_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown torch-native env 'native:Foo'.*native:CartPole.*native:Acrobot"):
        make_env("native:Foo")
    with pytest.raises(ValueError, match=r"unknown env 'NoSuchEnv-v0'.*gymnasium id.*native:CartPole"):
        make_env("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="num_envs must be >= 1, got 0"):
        make_env("native:CartPole", num_envs=0)


def test_max_episode_steps():
    assert max_episode_steps("CartPole-v1") == 500
    assert max_episode_steps("Pendulum-v1") == 200
    assert max_episode_steps("native:CartPole") == 500
    assert max_episode_steps("native:MountainCar") == 200


# ------------------------------------------------------------------------------------ evaluation
def manual_first_returns(n, seed, policy, limit):
    """Reference: step the same seeded env one step at a time and add rewards until each first done."""
    env = make_env("native:CartPole", n, seed=seed)
    td = env.reset()
    returns, alive = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.bool)
    for _ in range(limit):
        td = env.step(policy(td))
        returns += td["next", "reward"].squeeze(-1).double() * alive
        alive &= ~td["next", "done"].squeeze(-1)
        td = step_mdp(td)
        if not alive.any():
            break
    return returns


def test_evaluate_matches_a_step_by_step_reference():
    mean, std = evaluate("native:CartPole", lean_policy(), num_episodes=6, seed=3)
    ref = manual_first_returns(6, 3, lean_policy(), 500)
    assert ref.std() > 0  # the episodes really differ: the mask picks each one's own end
    assert mean == pytest.approx(float(ref.mean()))
    assert std == pytest.approx(float(ref.std(unbiased=False)))


def test_evaluate_caps_steps_and_counts_partial_returns():
    always_right = TensorDictModule(lambda o: torch.ones(o.shape[:-1], dtype=torch.long), ["observation"], ["action"])
    mean, _ = evaluate("native:CartPole", always_right, num_episodes=4, seed=0, max_steps=3)
    assert mean == 3.0  # no episode ends within 3 steps: each earns 1 per step
    gym_mean, _ = evaluate("CartPole-v1", always_right, num_episodes=3, seed=0)
    assert 5 <= gym_mean <= 15  # pushing one way tips the pole within ~10 steps
    single, std = evaluate("CartPole-v1", always_right, num_episodes=1, seed=0)
    assert std == 0.0 and 5 <= single <= 15


def test_evaluate_is_deterministic_for_a_stochastic_actor():
    env = make_env("native:CartPole", 2)
    actor = make_stochastic_actor(env, (8,))
    first = evaluate("native:CartPole", actor, 4, seed=5, max_steps=60)
    assert first == evaluate("native:CartPole", actor, 4, seed=5, max_steps=60)
    with pytest.raises(ValueError, match="num_episodes must be >= 1"):
        evaluate("native:CartPole", actor, 0)


# --------------------------------------------------------------------------------------- configs
@dataclass
class Base:
    a: int = 1
    """First field."""
    b: float = 0.5
    c: tuple[int, ...] = (4, 4)
    """Hidden sizes,
    on two lines."""


@dataclass
class Child(Base):
    b: float = 0.25
    """Now documented."""
    d: bool = False
    """A flag."""
    e: "float | None" = None
    """Optional."""
    f: str = "x"
    """A name."""


def test_config_docs_reads_attribute_docstrings_with_inheritance():
    assert config_docs(Base) == {"a": "First field.", "b": "", "c": "Hidden sizes, on two lines."}
    assert config_docs(Child) == {"a": "First field.", "b": "Now documented.", "c": "Hidden sizes, on two lines.",
                                  "d": "A flag.", "e": "Optional.", "f": "A name."}
    with pytest.raises(TypeError, match="expected a dataclass"):
        config_docs(int)


@dataclass
class Grandchild(Child):
    a: int = 5  # a new default only: the doc stays Base's
    f: str = "y"
    """Renamed."""


def test_config_docs_falls_back_to_the_base_docstring_of_a_redeclared_field():
    docs = config_docs(Grandchild)
    assert (Grandchild().a, docs["a"]) == (5, "First field.")
    assert (docs["b"], docs["f"]) == ("Now documented.", "Renamed.")
    assert list(docs) == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize("algo, env, frames, eval_every, target_return", [
    ("ppo", "CartPole-v1", 100_000, 5_000, 475.0), ("a2c", "CartPole-v1", 200_000, 5_000, 475.0),
    ("dqn", "CartPole-v1", 50_000, 0, None), ("ddpg", "Pendulum-v1", 20_000, 0, None),
    ("td3", "Pendulum-v1", 20_000, 0, None), ("sac", "Pendulum-v1", 20_000, 0, None),
    ("redq", "Pendulum-v1", 20_000, 0, None)])
def test_recipe_configs_keep_their_own_defaults_of_the_shared_fields(algo, env, frames, eval_every, target_return):
    cfg = get_recipe(algo).Config()
    assert isinstance(cfg, RecipeConfig)
    assert (cfg.env, cfg.frames, cfg.eval_every, cfg.target_return) == (env, frames, eval_every, target_return)
    assert (cfg.seed, cfg.torch_threads, cfg.eval_episodes, cfg.out_dir) == (0, 1, 20, None)
    docs = config_docs(type(cfg))
    assert docs["frames"] == "Total env steps to collect (the training budget)."
    assert docs["seed"].startswith("Seed of torch, NumPy, Python")


def test_apply_overrides_converts_to_the_field_types():
    cfg = apply_overrides(Child(), ["a=1e3", "b=0.1", "c=8,16", "d=true", "e=2.5", "f=hello=world"])
    assert (cfg.a, cfg.b, cfg.c, cfg.d, cfg.e, cfg.f) == (1000, 0.1, (8, 16), True, 2.5, "hello=world")
    assert apply_overrides(cfg, ["e=none", "d=0"]).e is None
    assert apply_overrides(cfg, {"a": 7, "c": "(2, 3)"}) == dataclasses.replace(cfg, a=7, c=(2, 3))
    assert Child().a == 1  # a copy: the original is untouched


def test_apply_overrides_errors_name_field_and_choices():
    with pytest.raises(ValueError, match=r"unknown config field 'zz'.*valid fields: a, b, c, d, e, f"):
        apply_overrides(Child(), ["zz=1"])
    with pytest.raises(ValueError, match=r"config field 'a' expects int: expected an integer, got '1.5'"):
        apply_overrides(Child(), ["a=1.5"])
    with pytest.raises(ValueError, match=r"config field 'd' expects bool: expected true/false, got 'maybe'"):
        apply_overrides(Child(), ["d=maybe"])
    with pytest.raises(ValueError, match=r"'lr' is not of the form key=value"):
        apply_overrides(Child(), ["lr"])


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_registered_recipe_has_documented_config_and_the_interface(algo):
    recipe = get_recipe(algo)
    assert callable(recipe.make_models) and callable(recipe.train)
    names = [f.name for f in dataclasses.fields(recipe.Config)]
    assert set(COMMON_FIELDS) <= set(names), f"{algo}.Config lacks {set(COMMON_FIELDS) - set(names)}"
    docs = config_docs(recipe.Config)
    undocumented = [name for name, doc in docs.items() if not doc]
    assert not undocumented, f"{algo}.Config fields without a docstring: {undocumented}"
    hints = typing.get_type_hints(recipe.Config)
    cfg = recipe.Config()  # every field has a default
    for f in dataclasses.fields(cfg):
        assert f.name in hints
        # every field round-trips through the CLI's key=value parsing
        value = getattr(cfg, f.name)
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert getattr(apply_overrides(cfg, [f"{f.name}={text}"]), f.name) == value
    assert cfg.frames > 0 and cfg.eval_episodes > 0


def test_get_recipe_error_lists_known_algorithms():
    with pytest.raises(ValueError, match=r"unknown algorithm 'bogus': known algorithms are .*a2c.*ppo"):
        get_recipe("bogus")
    assert get_recipe("PPO").__name__ == "rlbench.recipes.ppo"


# ------------------------------------------------------------------------------- results and files
@dataclass
class TinyConfig:
    env: str = "native:CartPole"
    frames: int = 100
    seed: int = 0
    eval_episodes: int = 3
    eval_every: int = 40
    target_return: "float | None" = None
    out_dir: "str | None" = None


def test_run_tracker_evaluates_on_schedule_and_stops_at_the_target():
    run = RunTracker("demo", TinyConfig())
    policy = lean_policy()
    assert [run.step(f, policy) for f in (20, 40, 60, 100)] == [False] * 4
    assert [row["frames"] for row in run.curve] == [40, 100]  # 80 was skipped over: one evaluation at 100
    results = run.finish(policy, 100, models={})
    assert [row["frames"] for row in results.curve] == [40, 100]  # the final evaluation is not a second row at 100
    assert results.solved_frames is None and results.run_dir is None and results.files == {}
    assert results.train_time <= results.wall_time

    run = RunTracker("demo", TinyConfig(target_return=1.0))
    assert run.step(40, policy) is True
    assert (run.solved_frames, run.solved_time is not None) == (40, True)
    with pytest.raises(TypeError, match=r"lacks the common fields \['env', 'frames', "):
        RunTracker("demo", Base())


def test_run_tracker_logs_to_a_given_logger():
    rows = []

    class ListLogger:
        def log_scalar(self, name, value, step):
            rows.append((name, value, step))

    run = RunTracker("demo", TinyConfig(), logger=ListLogger())
    run.step(40, lean_policy(), {"loss": torch.tensor(2.0, requires_grad=True)})
    assert ("loss", 2.0, 40) in rows
    assert [r[0] for r in rows if r[2] == 40] == ["loss", "eval/return", "eval/return_std"]
    run.finish(lean_policy(), 50, models={})
    assert [r[0] for r in rows if r[2] == 50] == ["eval/return", "eval/return_std", "eval/final_return"]


def test_track_episodes_matches_the_collectors_own_count():
    from rlbench.collectors import Collector

    # the collector's progress-bar bookkeeping is an independent reference for episode returns
    collector = Collector(make_env("native:CartPole", 6, seed=2), lean_policy(), frames_per_batch=6 * 16,
                          total_frames=6 * 16 * 5, progress={"disable": True})
    run = RunTracker("demo", TinyConfig())
    for batch in collector:
        recent = run.track_episodes(batch)
    collector.shutdown()
    assert len(run._recent) == len(collector.episode_returns) > 6  # episodes spanning batches included
    assert sorted(run._recent) == pytest.approx(sorted(collector.episode_returns))
    assert recent == pytest.approx(sum(collector.episode_returns) / len(collector.episode_returns))


def test_run_files_and_report(tmp_path):
    net = torch.nn.Linear(4, 2)
    run = RunTracker("demo", TinyConfig(out_dir=str(tmp_path), env="native:CartPole"))
    batch = make_env("native:CartPole", 4, seed=0).rollout(40, lean_policy(), break_when_any_done=False)
    run.step(40, lean_policy(), {"loss": 1.0}, batch=batch)
    results = run.finish(lean_policy(), 100, models={"net": net})
    assert len(results.train_curve) == 1 and results.train_curve[0][0] == 40
    assert set(results.files) == {"checkpoint", "curve", "results", "report", "logs"}
    from rlbench.trainers import load_checkpoint, read_csv_log

    fresh = torch.nn.Linear(4, 2)
    state = load_checkpoint(results.files["checkpoint"], net=fresh)
    assert torch.equal(fresh.weight, net.weight) and state["frames"] == 100
    assert read_csv_log(results.files["logs"])["loss"] == [(40, 1.0)]
    html = open(results.files["report"]).read()
    png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html).group(1))
    assert png.startswith(b"\x89PNG")
    assert "final mean evaluation return" in html


def test_report_escapes_strings(tmp_path):
    r = TrainResults("<b>x</b>", "<script>alert(1)</script>", 1.0, 0.0, 2, 10, 1.0, 1.0,
                     curve=[{"frames": 10, "train_time": 1.0, "eval_return": 1.0, "eval_std": 0.0}],
                     config={"env": "<script>"})
    html = write_report(tmp_path / "r.html", r).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


# ---------------------------------------------------------------------------------------- models
def test_models_follow_the_action_spec():
    cart = make_env("native:CartPole", 4)
    td = make_value_network(cart, (8,))(make_stochastic_actor(cart, (8,))(cart.reset()))
    assert td["action"].dtype == torch.int64 and td["logits"].shape == (4, 2)
    assert td["state_value"].shape == (4, 1) and td["sample_log_prob"].shape == (4,)
    pend = make_env("native:Pendulum", 4)
    td = make_stochastic_actor(pend, (8,))(pend.reset())
    assert td["action"].shape == (4, 1) and bool(pend.action_spec.is_in(td["action"]))


def test_models_refuse_unsupported_specs():
    class FakeEnv:
        batch_size = torch.Size([])
        observation_spec = Composite(observation=Unbounded((3,)))
        action_spec = Unbounded((2,))

    with pytest.raises(TypeError, match=r"no stochastic actor for action spec Unbounded: expected Categorical"):
        make_stochastic_actor(FakeEnv(), (8,))
    FakeEnv.observation_spec = Composite(other=Unbounded((3,)))
    with pytest.raises(ValueError, match=r"neither 'observation' nor 'pixels' \(keys: \['other'\]\)"):
        make_encoder(FakeEnv(), (8,), 2)


def test_pixel_observations_get_a_convnet():
    class PixelEnv:
        batch_size = torch.Size([])
        observation_spec = Composite(pixels=Unbounded((3, 64, 64)))
        action_spec = Categorical(3)

    actor = make_stochastic_actor(PixelEnv(), (16,))
    from tensordict import TensorDict

    td = actor(TensorDict(pixels=torch.rand(5, 3, 64, 64), batch_size=[5]))
    assert td["logits"].shape == (5, 3) and td["action"].shape == (5,)
