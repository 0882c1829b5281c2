"""rlbench.recipes.config: Config docs and overrides, the shared fields, and what each recipe's docstring shows."""
import dataclasses
import inspect
import typing
from dataclasses import dataclass

import pytest

from rlbench.recipes import ALGORITHMS, RecipeConfig, apply_overrides, config_docs, get_recipe
from rlbench.recipes.config import COMMON_FIELDS, inherited_fields


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
    assert inherited_fields(dqn) == [f.name for f in dataclasses.fields(RecipeConfig)]


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_recipe_docstrings_teach_public_import_paths_only(algo):
    recipe = get_recipe(algo)
    docs = [inspect.getdoc(recipe)] + [inspect.getdoc(obj) or "" for _, obj in inspect.getmembers(recipe)
                                       if getattr(obj, "__module__", None) == recipe.__name__]
    private = [line for doc in docs for line in doc.splitlines() if "rlbench.recipes._" in line]
    assert not private, private
