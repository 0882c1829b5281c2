"""Recipe configs and their command-line parsing.

* :class:`RecipeConfig`: the fields every recipe's ``Config`` has; :class:`OnPolicyConfig` (PPO, A2C) and
  :class:`OffPolicyConfig` (DDPG, TD3, SAC, REDQ) add what a family shares. Each recipe's ``Config``
  subclasses one of them, adds its own fields and retunes defaults; its module docstring lists every
  field it inherits, with the default it runs with.
* Every Config checks its values when it is built (``__post_init__``): a shared field's check is declared
  once, on the shared config that declares the field, a recipe adds checks for its own fields, and a bad
  value raises a one-line ``ValueError`` naming the field, the value and what is accepted
  (``ppo.Config: lr=-1.0 is invalid; expected a finite number > 0``). The rules are :class:`Rule` objects
  (:func:`integer`, :func:`number`, :func:`one_of`, :func:`optional`, :data:`WIDTHS`) applied by
  :func:`check_fields`.
* :func:`config_docs` reads each field's *attribute docstring* (the string literal on the line after the
  field) with ``ast``, so ``rlbench train <algo> --help`` can list them; :func:`apply_overrides` turns
  ``key=value`` strings into a new Config (the CLI's ``--config``); :func:`config_to_dict` makes the JSON
  form that run files and checkpoints store.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import numbers
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

from ..trainers.run import COMMON_FIELDS, config_to_dict

__all__ = ["COMMON_FIELDS", "RecipeConfig", "OnPolicyConfig", "OffPolicyConfig", "config_docs", "config_to_dict",
           "apply_overrides", "inherited_fields", "ENV_FAMILIES", "SUITE_FIELDS", "family_fields", "user_fields",
           "Rule", "integer", "number", "one_of", "optional", "check_fields",
           "WIDTHS", "NON_EMPTY_WIDTHS", "SEED", "NAME", "PROBABILITY", "POSITIVE", "NON_NEGATIVE"]


# ---------------------------------------------------------------------------------------- value checks
class Rule(NamedTuple):
    """What a Config field accepts: ``test(value)`` says whether a value is fine, ``accepted`` says it in words."""

    accepted: str
    test: Callable[[Any], bool]


def _is_integer(value) -> bool:
    # a whole number written as a float (frames=2e4 from Python) is accepted, as the CLI accepts "2e4"
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int = 0, high: int | None = None, high_name: str | None = None) -> Rule:
    """A whole number in ``[low, high]`` (``high=None``: no upper bound; ``high_name`` names it in the message).

    Example:
        >>> rule = integer(1)
        >>> rule.accepted, rule.test(3), rule.test(0), rule.test(2.5), rule.test(float("inf"))
        ('an integer >= 1', True, False, False, False)
    """
    if high is None:
        return Rule(f"an integer >= {low}", lambda v: _is_integer(v) and v >= low)
    bound = f"{high_name}={high}" if high_name else str(high)
    return Rule(f"an integer in [{low}, {bound}]", lambda v: _is_integer(v) and low <= v <= high)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Rule:
    """A finite number: ``> low`` when ``low_open``, else ``>= low``; ``<= high`` when ``high`` is given.

    Example:
        >>> number(0, low_open=True).accepted, number(0, 1).accepted, number(0, 1, low_open=True).accepted
        ('a finite number > 0', 'a number in [0, 1]', 'a number in (0, 1]')
        >>> number(0, low_open=True).test(float("nan"))
        False
    """
    def test(v) -> bool:
        if not _is_real(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or v <= high

    if low is None and high is None:
        return Rule("a finite number", test)
    if high is None:
        return Rule(f"a finite number {'>' if low_open else '>='} {low:g}", test)
    return Rule(f"a number in {'(' if low_open else '['}{low:g}, {high:g}]", test)


def one_of(*choices) -> Rule:
    """One of ``choices``.

    Example:
        >>> one_of("l2", "l1").accepted
        "one of 'l2', 'l1'"
    """
    return Rule("one of " + ", ".join(map(repr, choices)), lambda v: isinstance(v, str) and v in choices)


def optional(rule: Rule) -> Rule:
    """``rule`` or ``None``.

    Example:
        >>> optional(number()).accepted
        'a finite number or None'
    """
    return Rule(f"{rule.accepted} or None", lambda v: v is None or rule.test(v))


def _widths(v, non_empty: bool) -> bool:
    return isinstance(v, (tuple, list)) and (len(v) > 0 or not non_empty) and all(
        _is_integer(w) and w >= 1 for w in v)


WIDTHS = Rule("a tuple of integers >= 1, e.g. (64, 64)", lambda v: _widths(v, non_empty=False))
"""Hidden layer widths (an empty tuple: no hidden layer)."""

NON_EMPTY_WIDTHS = Rule("a non-empty tuple of integers >= 1, e.g. (128, 128)", lambda v: _widths(v, non_empty=True))
"""Hidden layer widths, at least one."""

SEED = Rule("an integer in [0, 2**63 - 1]", lambda v: _is_integer(v) and 0 <= v < 2**63)
"""A seed torch, NumPy and the envs all take."""
NAME = Rule("a non-empty string", lambda v: isinstance(v, str) and bool(v))
PROBABILITY = number(0, 1)
"""Discount factors, lambdas, epsilons, fractions."""
POSITIVE = number(0, low_open=True)
"""Learning rates, temperatures, clipping norms."""
NON_NEGATIVE = number(0)
"""Loss weights, noise scales."""


def check_fields(config, rules: dict[str, Rule]) -> None:
    """Raise a one-line ``ValueError`` for the first field of ``config`` whose value breaks its rule.

    The message names the Config (``<module>.<class>``), the field, the value and what is accepted.

    Example:
        >>> from rlbench.recipes import ppo
        >>> ppo.Config(lr=-1.0)
        Traceback (most recent call last):
        ...
        ValueError: ppo.Config: lr=-1.0 is invalid; expected a finite number > 0
    """
    for name, rule in rules.items():
        value = getattr(config, name)
        if not rule.test(value):
            owner = f"{type(config).__module__.rsplit('.', 1)[-1]}.{type(config).__name__}"
            raise ValueError(f"{owner}: {name}={value!r} is invalid; expected {rule.accepted}")


ENV_FAMILIES = ("atari", "dmc", "dmc_pixels", "mujoco")
"""The env families a recipe's ``FAMILY_DEFAULTS`` may name (:func:`rlbench.recipes.envs.env_family` tells them)."""


SUITE_FIELDS = ("eval_max_steps", "video", "pixels", "pixel_size", "frame_stack", "action_repeat",
                "atari_noop_max", "atari_frame_skip", "atari_max_pool", "atari_end_of_life", "atari_grayscale",
                "atari_screen_size", "atari_frame_stack", "atari_sign_reward", "atari_repeat_action_probability")
"""The :class:`RecipeConfig` fields that say how the envs are built and evaluated
(:func:`rlbench.recipes.envs.env_options`, :func:`rlbench.recipes.envs.evaluator`)."""


@dataclass
class RecipeConfig:
    """The fields every recipe's ``Config`` has (:data:`COMMON_FIELDS`, ``torch_threads``, the env suite's options).

    Each recipe's ``Config`` subclasses it (through :class:`OnPolicyConfig` or :class:`OffPolicyConfig` where
    a family shares more) and redeclares a field only to change its default; a redeclared field without a
    docstring keeps this one (:func:`config_docs` falls back to the base's). ``num_envs`` is not here: every
    recipe tunes it and :func:`rlbench.recipes.start_run` reads it from the subclass.

    **Env-family defaults.** A recipe's defaults are tuned for its small default env (CartPole, Pendulum). For
    the standard suites it also declares the published hyperparameters in ``FAMILY_DEFAULTS`` (a class
    attribute ``{family: {field: value}}``, with the sources cited in the recipe's Config docstring), where
    the family is ``"atari"`` (``ALE/...`` ids), ``"dmc"`` / ``"dmc_pixels"`` (``dmc:`` tasks from states /
    with ``pixels=True``) or ``"mujoco"`` (gymnasium's MuJoCo ids). When ``env`` is of such a family, each
    field the caller did not pass to the constructor takes the family's value: ``sac.Config(env="dmc:cartpole-
    swingup")`` gets the DMC batch size and ``sac.Config(env="dmc:cartpole-swingup", batch_size=64)`` keeps
    64. :func:`apply_overrides` (the CLI's ``--config``) rebuilds a Config from the fields its user set, so
    a new ``env`` brings its family's defaults along. :func:`family_fields` says which fields came from
    them (``rlbench train ALGO --env ENV --print-config`` marks them).

    **Pixels.** ``pixels=True`` trains from rendered frames (:func:`rlbench.recipes.make_env` builds them):
    ``dmc:`` tasks are rendered at ``pixel_size`` and gymnasium ids resized to it, ``frame_stack`` frames
    are stacked on the channels and each action is repeated ``action_repeat`` times, the preprocessing of
    SAC-AE (Yarats et al. 2021, arXiv:1910.01741) and DrQ (Kostrikov et al. 2021, arXiv:2004.13649).
    ``ALE/...`` ids are pixels already; their preprocessing is set by the ``atari_*`` fields (the fields of
    :class:`rlbench.envs.AtariPreprocessing`, e.g. ``--config atari_frame_skip=2 atari_sign_reward=false``).

    Example:
        >>> RecipeConfig().seed, RecipeConfig(frames=10).frames
        (0, 10)
    """

    FAMILY_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}
    """``{family: {field: value}}``: the published defaults of each env family (see the class docstring)."""

    env: str = "CartPole-v1"
    """Environment: a gymnasium id, a torch-native env such as native:CartPole, dmc:DOMAIN-TASK or an ALE/ id."""
    frames: int = 50_000
    """Total env steps to collect (the training budget)."""
    seed: int = 0
    """Seed of torch, NumPy, Python and the envs."""
    torch_threads: int = 1
    """torch.set_num_threads during training (small networks run fastest on one thread)."""
    eval_episodes: int = 20
    """Deterministic episodes in each evaluation."""
    eval_every: int = 0
    """Evaluate every this many frames (0: only at the end, which also disables early stopping)."""
    target_return: float | None = None
    """Stop as soon as an evaluation's mean return reaches this (None: use the whole budget)."""
    out_dir: str | None = None
    """Write checkpoint, logs, curve and HTML report under this folder (None: write nothing)."""
    eval_max_steps: int = 0
    """Cap each evaluation episode at this many steps (0: the env's time limit; ALE ids: 27000, 108k frames)."""
    video: bool = False
    """Film one deterministic episode of the final policy (mp4 under the run's logs/videos/, in report.html)."""
    pixels: bool = False
    """Train from rendered frames ("pixels") instead of states: dmc: tasks and gymnasium ids that render."""
    pixel_size: int = 84
    """Height and width of the frames with pixels=true (84 in SAC-AE and DrQ)."""
    frame_stack: int = 3
    """Frames stacked on the channel dim with pixels=true (3 in SAC-AE and DrQ: "pixels" is [9, 84, 84])."""
    action_repeat: int = 0
    """Repeat each action this many env steps (0: dmc pixels use DrQ's per-task value, cartpole 8, finger and
    walker 2, others 4; everything else 1). Frames count agent steps."""
    atari_noop_max: int = 30
    """Atari: up to this many random no-op frames at each reset (0: none)."""
    atari_frame_skip: int = 4
    """Atari: repeat each action this many frames, summing rewards."""
    atari_max_pool: bool = True
    """Atari: a skipped step's frame is the max of its last two frames."""
    atari_end_of_life: bool = True
    """Atari: write ("next", "end_of_life") when a life is lost (the game goes on)."""
    atari_grayscale: bool = True
    """Atari: one luma channel instead of RGB."""
    atari_screen_size: int = 84
    """Atari: resize frames to this square size (0: keep 210x160)."""
    atari_frame_stack: int = 4
    """Atari: stack the last this many frames on the channel dim (0 or 1: none)."""
    atari_sign_reward: bool = True
    """Atari: reward -> its sign in {-1, 0, 1}."""
    atari_repeat_action_probability: float = 0.25
    """Atari: ale-py's sticky actions (0.25: ALE v5 and Machado et al. 2018; 0.0: the Nature setting)."""

    def __new__(cls, *args, **kwargs):
        # remember which fields the caller gave: only the others take the env family's defaults
        self = super().__new__(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        object.__setattr__(self, "_given", frozenset(names[:len(args)]) | frozenset(kwargs))
        return self

    def __post_init__(self):
        self._apply_family_defaults()
        check_fields(self, {
            "env": NAME, "frames": integer(1), "seed": SEED, "torch_threads": integer(1), "eval_episodes": integer(1),
            "eval_every": integer(0), "target_return": optional(number()), "out_dir": optional(NAME),
            "eval_max_steps": integer(0), "pixel_size": integer(1), "frame_stack": integer(1),
            "action_repeat": integer(0),
            "atari_noop_max": integer(0), "atari_frame_skip": integer(1), "atari_screen_size": integer(0),
            "atari_frame_stack": integer(0), "atari_repeat_action_probability": PROBABILITY})

    def _apply_family_defaults(self) -> None:
        from .envs import env_family  # envs imports the env classes; config stays importable on its own

        given = getattr(self, "_given", frozenset())
        family = env_family(self.env, self.pixels) if isinstance(self.env, str) and self.env else None
        applied = {}
        for name, value in type(self).FAMILY_DEFAULTS.get(family, {}).items():
            if name not in given:
                setattr(self, name, value)
                applied[name] = value
        # the value each field not given got (its class default or the family's), to tell later which ones a
        # user changed (family_fields, apply_overrides)
        auto = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in given}
        object.__setattr__(self, "_family", (family, applied, auto))


def family_fields(config) -> tuple[str | None, dict[str, Any]]:
    """The env family of ``config`` and the fields that hold its family's defaults (not set by the user).

    Example:
        >>> from rlbench.recipes import sac
        >>> family, fields = family_fields(sac.Config(env="HalfCheetah-v5", lr=1e-3))
        >>> family, fields["batch_size"], "lr" in fields
        ('mujoco', 256, False)
    """
    family, applied, _ = getattr(config, "_family", (None, {}, {}))
    return family, {k: v for k, v in applied.items() if getattr(config, k) == v}


def user_fields(config) -> dict[str, Any]:
    """The fields of ``config`` its user set: given to the constructor, or changed since.

    Example:
        >>> from rlbench.recipes import ppo
        >>> user_fields(ppo.Config(lr=1e-3))
        {'lr': 0.001}
    """
    auto = getattr(config, "_family", (None, {}, {}))[2]
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name not in auto or getattr(config, f.name) != auto[f.name]}


@dataclass
class OnPolicyConfig(RecipeConfig):
    """Fields shared by the PPO and A2C recipes (each recipe's ``Config`` extends it and retunes defaults).

    Example:
        >>> OnPolicyConfig().num_envs, OnPolicyConfig().target_return
        (16, 475.0)
    """

    num_envs: int = 16
    """Envs stepped side by side (a gymnasium vector env or a native batch)."""
    steps_per_env: int = 16
    """Steps per env in each collected batch (the batch has num_envs * steps_per_env frames)."""
    lr: float = 3e-3
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to zero over the budget."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda (bias/variance trade-off of the advantage)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus."""
    critic_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this value."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and the critic."""
    ortho_init: bool = False
    """Orthogonal initialisation (policy output gain 0.01, value output gain 1, hidden sqrt(2))."""
    eval_every: int = 5_000
    target_return: float | None = 475.0
    """Stop once a periodic evaluation reaches this mean return (None: whole budget; 475 solves CartPole-v1)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {
            "num_envs": integer(1), "steps_per_env": integer(1), "lr": POSITIVE, "gamma": PROBABILITY,
            "gae_lambda": PROBABILITY, "entropy_coef": NON_NEGATIVE, "critic_coef": NON_NEGATIVE,
            "max_grad_norm": POSITIVE, "hidden_sizes": WIDTHS})


@dataclass
class OffPolicyConfig(RecipeConfig):
    """Fields shared by the DDPG, TD3, SAC and REDQ recipes (each recipe's ``Config`` extends it).

    Example:
        >>> OffPolicyConfig().env, OffPolicyConfig().utd_ratio
        ('Pendulum-v1', 1.0)
    """

    env: str = "Pendulum-v1"
    """Environment with a bounded continuous action space: a gymnasium id or e.g. native:Pendulum."""
    frames: int = 20_000
    seed: int = 0
    """Seed of torch, NumPy, Python, the envs and the replay buffer."""
    num_envs: int = 1
    """Envs stepped side by side (a gymnasium vector env or a native batch)."""
    frames_per_batch: int = 50
    """Frames collected between two rounds of gradient steps (a multiple of num_envs)."""
    init_random_frames: int = 1000
    """Frames of uniformly random actions collected before the policy acts and training starts."""
    buffer_size: int = 100_000
    """Replay buffer capacity in transitions."""
    batch_size: int = 256
    """Transitions per gradient step."""
    utd_ratio: float = 1.0
    """Update-to-data ratio: gradient steps per collected frame."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak weight of the online parameters in each target-network update."""
    lr: float = 1e-3
    """Adam learning rate of the actor, the critics (and the temperature, where there is one)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and of each critic."""
    max_grad_norm: float | None = None
    """Clip the global gradient norm to this value (None: no clipping)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {
            "num_envs": integer(1), "frames_per_batch": integer(1), "init_random_frames": integer(0),
            "buffer_size": integer(1), "batch_size": integer(1), "utd_ratio": POSITIVE, "gamma": PROBABILITY,
            "tau": number(0, 1, low_open=True), "lr": POSITIVE, "hidden_sizes": WIDTHS,
            "max_grad_norm": optional(POSITIVE)})
        # every sub-env steps the same number of times per batch (the Collector's rule)
        check_fields(self, {"frames_per_batch": Rule(f"a multiple of num_envs={self.num_envs}",
                                                     lambda v: v % self.num_envs == 0)})


def config_docs(config_cls) -> dict[str, str]:
    """The attribute docstring of each field of a Config dataclass (``""`` where there is none).

    A subclass that redeclares a field without a docstring (to change its default) keeps its base's.
    A field is documented by a string literal on the line right after it::

        @dataclass
        class Config:
            lr: float = 3e-4
            \"\"\"Adam learning rate.\"\"\"

    Example:
        >>> from rlbench.recipes import ppo
        >>> config_docs(ppo.Config)["lr"]
        'Adam learning rate.'
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_docs: expected a dataclass, got {config_cls!r}")
    docs = {f.name: "" for f in dataclasses.fields(config_cls)}
    for klass in reversed(config_cls.__mro__):  # a subclass's docstring overrides its base's
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # defined in a REPL: no source to read
            continue
        body = ast.parse(source).body[0].body
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)
                    and stmt.target.id in docs):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def inherited_fields(config_cls) -> list[str]:
    """The fields a recipe's Config takes from the shared configs of this module (redeclared ones included).

    Each recipe's module docstring lists them with their defaults, so the file shows every
    hyperparameter the loop reads. The env-suite options (:data:`SUITE_FIELDS`: pixels, frame stack,
    Atari preprocessing) are not listed: they shape the env, not the loop, and :class:`RecipeConfig`
    documents them once.

    Example:
        >>> from rlbench.recipes import ppo
        >>> inherited_fields(ppo.Config)[:3], "epochs" in inherited_fields(ppo.Config)
        (['env', 'frames', 'seed'], False)
    """
    shared = {f.name for klass in config_cls.__mro__ if klass in (RecipeConfig, OnPolicyConfig, OffPolicyConfig)
              for f in dataclasses.fields(klass)}
    return [f.name for f in dataclasses.fields(config_cls) if f.name in shared and f.name not in SUITE_FIELDS]


def _parse_value(text: str, kind, name: str):
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null", ""):
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse_value(text, inner[0], name)
    if origin in (tuple, list):
        item = args[0] if args else str
        parts = [p for p in text.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")
                 if p.strip()]
        values = [_parse_value(p.strip(), item, name) for p in parts]
        return tuple(values) if origin is tuple else values
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if kind is int:
        value = float(text)  # accept "1e5"
        if not math.isfinite(value):  # int() of inf raises OverflowError, of nan ValueError
            raise ValueError(f"expected a finite integer, got {text!r}")
        if value != int(value):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(value)
    if kind is float:
        return float(text)
    return text


def apply_overrides(config, overrides) -> Any:
    """Return a copy of ``config`` with fields replaced from ``"key=value"`` strings (or a dict).

    Values are converted to the field's annotated type: ``int`` (``1e5`` is accepted), ``float``,
    ``bool`` (``true/false/1/0``), ``str``, ``tuple[int, ...]`` (``64,64``), ``X | None``
    (``none``). The copy is built from the fields the user set (:func:`user_fields`) and the changes, so
    the other fields take the defaults of the (new) env's family (see :class:`RecipeConfig`). An unknown
    key or a value that does not convert raises a ``ValueError`` naming the field, the expected type and
    the valid fields.

    Example:
        >>> from rlbench.recipes import ppo
        >>> apply_overrides(ppo.Config(), ["lr=1e-3", "hidden_sizes=32,32"]).hidden_sizes
        (32, 32)
    """
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"config override {item!r} is not of the form key=value (e.g. lr=3e-4)")
            key, value = item.split("=", 1)
            items.append((key.strip(), value))
    changes = {}
    for key, value in items:
        if key not in names:
            raise ValueError(f"unknown config field {key!r} for {type(config).__module__}.{type(config).__name__}; "
                             f"valid fields: {', '.join(names)}")
        if isinstance(value, str):
            try:
                value = _parse_value(value, hints[key], key)
            except ValueError as err:
                type_name = getattr(hints[key], "__name__", str(hints[key]))
                raise ValueError(f"config field {key!r} expects {type_name}: {err}") from None
        changes[key] = value
    # rebuilt from the fields the user set, so that a new env brings its family's defaults for the others
    return type(config)(**(user_fields(config) | changes))
