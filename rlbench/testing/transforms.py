"""The checklist every env transform must pass, for rlbench's transforms and for yours.

:func:`check_transform_contract` runs every check on one transform; a :class:`TransformCase` says how to
build the transform and the env it is meant for. The checks:

- ``alone``: applied by itself to a reset TensorDict, the transform produces values that its env's
  specs accept, and only keys those specs declare;
- ``compose``: inside a ``Compose`` it gives the same results as alone, in and out of an env;
- ``env``: ``check_env_specs`` passes on the transformed env (unbatched, and batched with partial
  resets), a rollout's and a ``rand_step``'s data match the specs, and the batched env's
  ``*_spec_unbatched`` are the unbatched env's specs;
- ``replay``: applied to a replay-buffer-like batch (``[B, T]`` with ``"next"``, and a flat ``[B]``
  sample) the output matches the specs; with ``replay_exact`` it equals what the transformed env
  produced on the same trajectory;
- ``inverse`` (action transforms only, ``inverse=True``): ``inv`` turns the caller's action into one the
  base env accepts and leaves the caller's TensorDict untouched;
- ``serial``: ``check_env_specs`` on a ``SerialEnv`` of transformed envs and on a transformed ``SerialEnv``;
- ``next_keys`` (per-key transforms: ``forward`` and ``_call`` not overridden): listing ``("next", key)``
  beside each in_key, as TorchRL users do, gives the same replay-sample output (each entry transformed
  once);
- ``exported``: one of rlbench's own transforms is importable from ``rlbench.envs`` as well as
  ``rlbench.envs.transforms``.

The env factories here (:func:`counting_env` and friends) take a batch size and give sub-envs of a
batch different episode lengths, so batched rollouts cross partial resets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from tensordict import TensorDictBase

from .. import envs as _envs
from ..envs import SerialEnv, check_env_specs
from ..envs.common import EnvBase
from ..envs.transforms import Compose, ToTensorImage, Transform, TransformedEnv
from .envs import ContinuousCountingEnv, CountingEnv, DoubleCountingEnv, PixelCountingEnv

__all__ = [
    "TransformCase",
    "check_transform_contract",
    "TRANSFORM_CHECKS",
    "assert_matches_specs",
    "counting_env",
    "continuous_counting_env",
    "double_counting_env",
    "pixel_counting_env",
    "image_counting_env",
]

BATCH = 3  # the batch size of the batched checks


def _max_steps(batch_size):
    """Different episode lengths per sub-env, so batched rollouts have partial resets."""
    if not batch_size:
        return 4
    return torch.tensor([3, 4, 6][: batch_size[0]] + [5] * max(0, batch_size[0] - 3)).reshape(*batch_size, 1)


def counting_env(batch_size=()) -> EnvBase:
    """A :class:`~rlbench.testing.CountingEnv` (episodes of 3, 4, 6, 5, ... steps per sub-env)."""
    return CountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size)


def continuous_counting_env(batch_size=()) -> EnvBase:
    """A :class:`~rlbench.testing.ContinuousCountingEnv` (continuous actions), staggered episodes."""
    return ContinuousCountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size)


def double_counting_env(batch_size=()) -> EnvBase:
    """A :class:`~rlbench.testing.DoubleCountingEnv` (float64 observations and actions), staggered episodes."""
    return DoubleCountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size)


def pixel_counting_env(batch_size=()) -> EnvBase:
    """A :class:`~rlbench.testing.PixelCountingEnv` (uint8 ``[8, 10, 3]`` frames), staggered episodes."""
    return PixelCountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size, height=8, width=10)


def image_counting_env(batch_size=()) -> EnvBase:
    """Channels-first float images (what most image transforms expect), staggered episodes.

    A ``PixelCountingEnv`` through ``ToTensorImage``: the transform under test sits in a nested
    ``TransformedEnv``.
    """
    return TransformedEnv(pixel_counting_env(batch_size), ToTensorImage())


@dataclass
class TransformCase:
    """A transform to check, and the env it is meant for.

    Attributes:
        name: a name for messages (and test ids).
        make: builds a fresh transform (called once per use: a transform sits in one env only).
        env: builds the env, given a batch size (``()`` or ``(BATCH,)``).
        inverse: the transform has an inverse (action) direction: also run the ``inverse`` check.
        replay_exact: the forward transform of a recorded trajectory equals what the transformed env
            produced on it (False for transforms with running statistics or per-env randomness).
        env_only: the transform does nothing outside an env (``NoopResetEnv``, ``FrameSkipTransform``).
        skip_keys: keys the ``replay`` check does not compare.
    """

    name: str
    make: Callable[[], Transform]
    env: Callable[..., EnvBase] = counting_env
    inverse: bool = False
    replay_exact: bool = True
    env_only: bool = False
    skip_keys: tuple = field(default_factory=tuple)


def _zero_policy(env):
    """A deterministic policy (rollouts of two envs then see the same actions)."""
    def policy(td):
        return td.set(env.action_key, env.action_spec.zero())

    return policy


def assert_matches_specs(env: EnvBase, td: TensorDictBase, what: str) -> None:
    """Assert that every key of ``td`` (root and ``"next"``) that ``env``'s specs declare is in its spec.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> env = CountingEnv()
        >>> assert_matches_specs(env, env.rollout(3), "a rollout")
    """
    root_spec = env.observation_spec.clone().update(env.state_spec).update(env.done_spec)
    next_spec = env.output_spec
    for spec, sub, where in ((root_spec, td, "root"), (next_spec, td.get("next", None), "next")):
        if sub is None:
            continue
        for key in spec.keys(True, True):
            if key in sub.keys(True, True):
                why = spec[key].mismatch(sub.get(key))
                assert why is None, f"{what}: {where} key {key!r}: {why}"


def _raw_rollout(case: TransformCase, batch_size, steps: int = 8):
    """What the base env produces (the data a replay buffer would hold without the transform)."""
    env = case.env(batch_size)
    return env.rollout(steps, policy=_zero_policy(env), break_when_any_done=False)


# ---------------------------------------------------------------------------------------- checks
def check_alone(case: TransformCase) -> None:
    """The transform by itself on a reset TensorDict: values in the specs, no undeclared keys."""
    env = TransformedEnv(case.env(), case.make())
    raw = case.env().reset()
    out = case.make()(raw.clone())
    assert_matches_specs(env, out, f"{case.name} alone on a reset TensorDict")
    if not case.env_only:
        produced = set(out.keys(True, True)) - set(raw.keys(True, True))
        declared = set(env.observation_spec.keys(True, True))
        assert produced <= declared, f"{case.name} writes keys its specs do not declare: {sorted(produced - declared)}"


def check_compose(case: TransformCase) -> None:
    """In a ``Compose``: the same results as alone, and a sound env."""
    data = _raw_rollout(case, ())
    alone, composed = case.make()(data.clone()), Compose(case.make())(data.clone())
    assert set(alone.keys(True, True)) == set(composed.keys(True, True)), f"{case.name}: Compose changes the keys"
    for key in alone.keys(True, True):
        torch.testing.assert_close(alone.get(key), composed.get(key), msg=f"{case.name}: {key!r}")
    env = TransformedEnv(case.env(), Compose(case.make()))
    check_env_specs(env)
    env.rollout(6, break_when_any_done=False)


def check_env(case: TransformCase) -> None:
    """``check_env_specs`` and rollouts (unbatched and batched, across episode ends) match the specs."""
    for batch_size in ((), (BATCH,)):
        env = TransformedEnv(case.env(batch_size), case.make())
        assert check_env_specs(env) == []
        data = env.rollout(12, break_when_any_done=False)
        assert data.shape == (*batch_size, 12), f"{case.name}: rollout shape {tuple(data.shape)}"
        assert_matches_specs(env, data, f"{case.name} rollout, batch {batch_size}")
        assert bool(data["next", "done"].any()), f"{case.name}: the rollout should cross an episode end"
        stepped = env.rand_step(env.reset())
        assert_matches_specs(env, stepped, f"{case.name} rand_step, batch {batch_size}")
    batched, single = TransformedEnv(case.env((BATCH,)), case.make()), TransformedEnv(case.env(), case.make())
    for name in ("observation_spec", "action_spec", "reward_spec", "done_spec", "state_spec"):
        assert getattr(batched, f"{name}_unbatched") == getattr(single, name), (
            f"{case.name}: {name}_unbatched of the batched env differs from the unbatched env's {name}"
        )


def check_replay(case: TransformCase) -> None:
    """On replay samples (``[B, T]`` trajectories and a flat ``[B]`` batch) the output matches the specs."""
    data = _raw_rollout(case, (BATCH,))
    env = TransformedEnv(case.env((BATCH,)), case.make())
    out = case.make()(data.clone())  # [B, T] trajectories
    assert_matches_specs(env, out, f"{case.name} on a [B, T] sample")
    flat = data.reshape(-1)[torch.randperm(data.numel())[:5]]  # [B] independent transitions
    unbatched = TransformedEnv(case.env(), case.make())  # specs without batch dims fit any sample
    assert_matches_specs(unbatched, case.make()(flat.clone()), f"{case.name} on a [B] sample")
    if case.replay_exact:
        expected = env.rollout(8, policy=_zero_policy(env), break_when_any_done=False)
        for key in expected.keys(True, True):
            if case.inverse and key == env.action_key:
                continue  # the forward direction leaves recorded actions as they are
            if key in out.keys(True, True) and key not in case.skip_keys:
                torch.testing.assert_close(out.get(key), expected.get(key), msg=f"{case.name}: {key!r}")


def check_inverse(case: TransformCase) -> None:
    """``inv`` maps the caller's actions (live and recorded) into the base env's action spec.

    The caller's TensorDict is left as it was.
    """
    base = case.env()
    env = TransformedEnv(case.env(), case.make())
    td = env.rand_action(env.reset())
    action = td.get(env.action_key).clone()
    inverted = env.transform.inv(td)
    assert base.action_spec.is_in(inverted.get(base.action_key)), base.action_spec.mismatch(
        inverted.get(base.action_key)
    )
    assert torch.equal(td.get(env.action_key), action), f"{case.name}: inv must not modify the caller's TensorDict"
    assert env.action_spec.is_in(action)
    # on a replay sample: the recorded (outside) actions map back to env actions
    data = env.rollout(5, break_when_any_done=False)
    assert base.action_spec.is_in(env.transform.inv(data).get(base.action_key))


def check_serial(case: TransformCase) -> None:
    """``check_env_specs`` on a SerialEnv of transformed envs and on a transformed SerialEnv."""
    serial_of_transformed = SerialEnv(2, lambda: TransformedEnv(case.env(), case.make()))
    assert check_env_specs(serial_of_transformed) == []
    serial_of_transformed.rollout(10, break_when_any_done=False)
    transformed_serial = TransformedEnv(SerialEnv(2, lambda: case.env()), case.make())
    assert check_env_specs(transformed_serial) == []
    transformed_serial.rollout(10, break_when_any_done=False)


def check_next_keys(case: TransformCase) -> None:
    """Listing ``("next", key)`` in in_keys next to ``key`` transforms each replay entry once, as without it.

    Runs for per-key transforms (``forward`` and ``_call`` as :class:`Transform` defines them); the keys
    of other transforms mean something else (the inputs of a concatenation, say).
    """
    plain = case.make()
    if case.env_only or type(plain).forward is not Transform.forward or type(plain)._call is not Transform._call:
        return
    data = _raw_rollout(case, (BATCH,))
    expected = plain(data.clone())
    both = case.make()
    both.in_keys = [*both.in_keys, *[("next", *_key(k)) for k in both.in_keys]]
    both.out_keys = [*both.out_keys, *[("next", *_key(k)) for k in both.out_keys]]
    got = both(data.clone())
    assert set(got.keys(True, True)) == set(expected.keys(True, True)), f"{case.name}: the keys differ"
    for key in expected.keys(True, True):
        torch.testing.assert_close(got.get(key), expected.get(key), msg=f"{case.name}: {key!r} with next in_keys")


def _key(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def check_exported(case: TransformCase) -> None:
    """One of rlbench's transforms is importable from ``rlbench.envs`` too (TorchRL users import it there)."""
    cls = type(case.make())
    if not cls.__module__.startswith("rlbench.envs.transforms"):
        return  # a user's own transform
    assert getattr(_envs, cls.__name__, None) is cls, f"rlbench.envs does not export {cls.__name__}"
    assert cls.__name__ in _envs.__all__, f"{cls.__name__} is missing from rlbench.envs.__all__"


TRANSFORM_CHECKS: dict[str, Callable[[TransformCase], None]] = {
    "alone": check_alone,
    "compose": check_compose,
    "env": check_env,
    "replay": check_replay,
    "inverse": check_inverse,
    "serial": check_serial,
    "next_keys": check_next_keys,
    "exported": check_exported,
}


def check_transform_contract(case: TransformCase | Callable[[], Transform], checks=None, **case_kwargs) -> None:
    """Run the transform checklist (see the module docstring) on one transform; raise on the first failure.

    Args:
        case: a :class:`TransformCase`, or a callable building the transform (then ``case_kwargs`` are
            the other :class:`TransformCase` fields: ``env=``, ``inverse=``, ``replay_exact=``, ...).
        checks: names of the checks to run (keys of :data:`TRANSFORM_CHECKS`); default: all that apply
            (``inverse`` only for a case with ``inverse=True``).
        **case_kwargs: :class:`TransformCase` fields, when ``case`` is a callable.

    Raises:
        AssertionError: naming the case and the check that failed, chained to the original failure.

    Example:
        >>> from rlbench.envs.transforms import RewardScaling, Transform
        >>> from rlbench.testing import check_transform_contract
        >>> check_transform_contract(lambda: RewardScaling(0.5, 2.0))  # passes: nothing happens
        >>> class Shout(Transform):  # writes a key that no spec declares
        ...     def _call(self, td):
        ...         return td.set("loud", td.get("observation") * 10)
        >>> check_transform_contract(lambda: Shout(), checks=["alone"])
        Traceback (most recent call last):
            ...
        AssertionError: transform contract: Shout failed the 'alone' check: ... do not declare: ['loud']
    """
    if not isinstance(case, TransformCase):
        name = case_kwargs.pop("name", None) or type(case()).__name__
        case = TransformCase(name, case, **case_kwargs)
    elif case_kwargs:
        raise TypeError("check_transform_contract: pass TransformCase fields only with a transform factory")
    if checks is None:
        checks = [name for name in TRANSFORM_CHECKS if name != "inverse" or case.inverse]
    for name in checks:
        if name not in TRANSFORM_CHECKS:
            raise ValueError(f"check_transform_contract: unknown check {name!r}; checks: {list(TRANSFORM_CHECKS)}")
        try:
            TRANSFORM_CHECKS[name](case)
        except AssertionError as err:
            raise AssertionError(f"transform contract: {case.name} failed the {name!r} check: {err}") from err
