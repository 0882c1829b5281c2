"""rlbench.recipes.config: Config docs and overrides, the shared fields, and what each recipe's docstring shows."""
import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass

import pytest

from rlbench.recipes import ALGORITHMS, RecipeConfig, apply_overrides, config_docs, get_recipe
from rlbench.recipes.config import COMMON_FIELDS, SUITE_FIELDS, inherited_fields


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


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_recipe_docstring_lists_every_inherited_field_with_its_default(algo):
    recipe = get_recipe(algo)
    config, doc = recipe.Config(), inspect.getdoc(recipe)
    inherited = inherited_fields(recipe.Config)
    assert set(COMMON_FIELDS) <= set(inherited)
    listed = [f"{name}={getattr(config, name)!r}" for name in inherited]
    missing = [entry for entry in listed if entry not in doc]
    assert not missing, f"rlbench.recipes.{algo}'s docstring does not list the inherited fields {missing}"


def test_inherited_fields_are_those_of_the_shared_configs():
    ppo, sac, dqn = (get_recipe(a).Config for a in ("ppo", "sac", "dqn"))
    assert "epochs" not in inherited_fields(ppo) and "steps_per_env" in inherited_fields(ppo)
    assert "alpha_init" not in inherited_fields(sac) and "utd_ratio" in inherited_fields(sac)
    # the env-suite options are documented once, on RecipeConfig, not in each recipe's docstring
    assert inherited_fields(dqn) == [f.name for f in dataclasses.fields(RecipeConfig) if f.name not in SUITE_FIELDS]
    assert "pixels" in SUITE_FIELDS and "atari_frame_skip" in SUITE_FIELDS and "env" not in SUITE_FIELDS


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_recipe_docstrings_teach_public_import_paths_only(algo):
    recipe = get_recipe(algo)
    docs = [inspect.getdoc(recipe)] + [inspect.getdoc(obj) or "" for _, obj in inspect.getmembers(recipe)
                                       if getattr(obj, "__module__", None) == recipe.__name__]
    private = [line for doc in docs for line in doc.splitlines() if "rlbench.recipes._" in line]
    assert not private, private


# issue 13 item 8: each Config checks its values when it is built, naming the field, the value and what is accepted
BAD_VALUES = [
    ("ppo", "lr", -1.0, r"a finite number > 0"),
    ("ppo", "lr", float("nan"), r"a finite number > 0"),
    ("ppo", "num_envs", 0, r"an integer >= 1"),
    ("ppo", "minibatch_size", 0, r"an integer >= 1"),
    ("ppo", "epochs", float("inf"), r"an integer >= 1"),
    ("ppo", "eval_episodes", 0, r"an integer >= 1"),
    ("ppo", "gamma", 5.0, r"a number in \[0, 1\]"),
    ("ppo", "frames", 0, r"an integer >= 1"),
    ("ppo", "seed", -1, r"an integer in \[0, 2\*\*63 - 1\]"),
    ("ppo", "eval_every", -5, r"an integer >= 0"),
    ("ppo", "target_return", float("inf"), r"a finite number or None"),
    ("ppo", "hidden_sizes", (64, 0), r"a tuple of integers >= 1, e.g. \(64, 64\)"),
    ("a2c", "steps_per_env", 0, r"an integer >= 1"),
    ("a2c", "gae_lambda", 1.5, r"a number in \[0, 1\]"),
    ("dqn", "n_step", 0, r"an integer >= 1"),
    ("dqn", "loss_function", "l3", r"one of 'l2', 'l1', 'smooth_l1'"),
    ("dqn", "hidden_sizes", (), r"a non-empty tuple of integers >= 1, e.g. \(128, 128\)"),
    ("dqn", "eps_end", 2.0, r"a number in \[0, 1\]"),
    ("dqn", "tau", 0.0, r"a number in \(0, 1\] or None"),
    ("rainbow", "n_atoms", 1, r"an integer >= 2"),
    ("ddpg", "exploration", "uniform", r"one of 'gaussian', 'ou'"),
    ("ddpg", "exploration_sigma", -0.1, r"a finite number >= 0"),
    ("td3", "policy_delay", 0, r"an integer >= 1"),
    ("sac", "tau", 0.0, r"a number in \(0, 1\]"),
    ("sac", "batch_size", 0, r"an integer >= 1"),
    ("sac", "alpha_init", 0.0, r"a finite number > 0"),
    ("sac", "init_random_frames", -1, r"an integer >= 0"),
    ("redq", "sub_sample_len", 11, r"an integer in \[1, num_qvalue_nets=10\]"),
]


@pytest.mark.parametrize("algo, field, value, accepted", BAD_VALUES)
def test_config_refuses_a_bad_value_naming_field_value_and_what_is_accepted(algo, field, value, accepted):
    recipe = get_recipe(algo)
    with pytest.raises(ValueError) as err:
        recipe.Config(**{field: value})
    owner = f"{recipe.Config.__module__.rsplit('.', 1)[-1]}.{recipe.Config.__name__}"
    message = str(err.value)
    assert "\n" not in message
    assert re.fullmatch(rf"{re.escape(owner)}: {field}={re.escape(repr(value))} is invalid; expected {accepted}",
                        message), message


def test_config_checks_run_on_overrides_and_cross_field_rules():
    sac = get_recipe("sac")
    with pytest.raises(ValueError, match=r"sac.Config: frames_per_batch=50 is invalid; expected a multiple of "
                                         r"num_envs=3"):
        sac.Config(num_envs=3)
    with pytest.raises(ValueError, match=r"ppo.Config: gamma=5.0 is invalid"):
        apply_overrides(get_recipe("ppo").Config(), ["gamma=5"])
    with pytest.raises(ValueError, match=r"dqn.Config: v_max=5.0 is invalid; expected a number with v_min < v_max"):
        get_recipe("dqn").Config(distributional=True, v_min=5.0, v_max=5.0)
    assert get_recipe("dqn").Config(v_min=5.0, v_max=5.0).v_max == 5.0  # the support is read only by C51
    assert get_recipe("ppo").Config(frames=2e4).frames == 2e4  # a whole number written as a float is fine


@pytest.mark.parametrize("text", ["inf", "-inf", "1e400", "nan"])
def test_apply_overrides_refuses_non_finite_integers(text):
    with pytest.raises(ValueError, match=rf"config field 'a' expects int: expected a finite integer, got '{text}'"):
        apply_overrides(Child(), [f"a={text}"])
