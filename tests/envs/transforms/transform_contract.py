"""The checklist every transform must pass, and the registry of transforms it runs on.

Each :class:`Case` names a transform factory and the env it is meant for (a factory taking a batch
size). ``test_transform_contract.py`` runs every check on every case:

- ``check_alone``: the transform applied to a TensorDict by itself produces values its env's specs accept;
- ``check_compose``: inside a ``Compose`` it gives the same results as alone, in and out of an env;
- ``check_env``: ``check_env_specs`` passes on the transformed env (unbatched and batched with partial
  resets) and a rollout's data match the specs;
- ``check_replay``: applied to a replay-buffer-like batch (``[B, T]`` with ``"next"``, and a flat
  ``[B]`` sample) the output matches the specs; for transforms marked ``replay_exact`` it equals what
  the transformed env produced on the same trajectory;
- ``check_inverse``: for action transforms, ``inv`` turns the caller's action into one the base env
  accepts, leaving the caller's TensorDict untouched;
- ``check_serial``: ``check_env_specs`` on a ``SerialEnv`` of transformed envs and on a transformed
  ``SerialEnv`` (skipped while ``rlbench.envs.batched`` is not importable).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from rlbench.envs import check_env_specs
from rlbench.envs.transforms import (
    CatFrames,
    CatTensors,
    CenterCrop,
    Compose,
    DoubleToFloat,
    ExcludeTransform,
    FlattenObservation,
    FrameSkipTransform,
    GrayScale,
    InitTracker,
    NoopResetEnv,
    ObservationNorm,
    RenameTransform,
    Resize,
    RewardClipping,
    RewardScaling,
    RewardSum,
    StepCounter,
    ToTensorImage,
    TransformedEnv,
    UnsqueezeTransform,
    VecNorm,
)
from rlbench.testing import ContinuousCountingEnv, CountingEnv, DoubleCountingEnv, PixelCountingEnv

try:
    from rlbench.envs.batched import SerialEnv
except ImportError:  # being written in parallel; the serial checks skip until it lands
    SerialEnv = None

BATCH = 3


def _max_steps(batch_size):
    """Different episode lengths per sub-env, so batched rollouts have partial resets."""
    if not batch_size:
        return 4
    return torch.tensor([3, 4, 6][: batch_size[0]] + [5] * max(0, batch_size[0] - 3)).reshape(*batch_size, 1)


def counting(batch_size=()):
    return CountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size)


def continuous(batch_size=()):
    return ContinuousCountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size)


def double(batch_size=()):
    return DoubleCountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size)


def pixels_raw(batch_size=()):
    return PixelCountingEnv(max_steps=_max_steps(batch_size), batch_size=batch_size, height=8, width=10)


def pixels(batch_size=()):
    """Channels-first float images (what most image transforms expect): a nested TransformedEnv."""
    return TransformedEnv(pixels_raw(batch_size), ToTensorImage())


@dataclass
class Case:
    name: str
    make: Callable
    env: Callable = counting
    inverse: bool = False
    replay_exact: bool = True  # forward on a recorded trajectory == what the env produced
    env_only: bool = False  # does nothing outside an env (NoopResetEnv, FrameSkipTransform)
    skip_keys: tuple = field(default_factory=tuple)


CASES = [
    Case("ToTensorImage", ToTensorImage, env=pixels_raw),
    Case("Resize", lambda: Resize(6, 4), env=pixels),
    Case("GrayScale", GrayScale, env=pixels),
    Case("CenterCrop", lambda: CenterCrop(6, 4), env=pixels),
    Case("CatFrames", lambda: CatFrames(3, dim=-1)),
    Case("CatFrames-pixels", lambda: CatFrames(2, dim=-3), env=pixels),
    Case("ObservationNorm", lambda: ObservationNorm(loc=1.0, scale=2.0)),
    Case("VecNorm", VecNorm, replay_exact=False),
    Case("RewardScaling", lambda: RewardScaling(0.5, 2.0)),
    Case("RewardClipping", lambda: RewardClipping(-0.5, 0.5)),
    Case("RewardSum", RewardSum),
    Case("StepCounter", StepCounter),
    Case("StepCounter-max_steps", lambda: StepCounter(max_steps=2), replay_exact=False),
    Case("DoubleToFloat", DoubleToFloat, env=double, inverse=True),
    Case("FlattenObservation", lambda: FlattenObservation(-3), env=pixels),
    Case("UnsqueezeTransform", lambda: UnsqueezeTransform(-1, in_keys=["observation"], in_keys_inv=["action"]),
         env=continuous, inverse=True),
    Case("CatTensors", lambda: CatTensors(["observation", "total"], "vector")),
    Case("NoopResetEnv", lambda: NoopResetEnv(2), replay_exact=False, env_only=True),
    Case("FrameSkipTransform", lambda: FrameSkipTransform(2), replay_exact=False, env_only=True),
    Case("InitTracker", InitTracker),
    Case("RenameTransform", lambda: RenameTransform(["observation"], ["count"])),
    Case("ExcludeTransform", lambda: ExcludeTransform("total")),
    Case("Compose", lambda: Compose(StepCounter(), RewardSum(), ObservationNorm(loc=0.5, scale=3.0))),
]


def zero_policy(env):
    """A deterministic policy (rollouts of two envs then see the same actions)."""
    def policy(td):
        return td.set(env.action_key, env.action_spec.zero())

    return policy


def assert_matches_specs(env, td, what: str) -> None:
    """Every key of ``td`` (root and ``"next"``) that ``env``'s specs declare belongs to its spec."""
    root_spec = env.observation_spec.clone().update(env.state_spec).update(env.done_spec)
    next_spec = env.output_spec
    for spec, sub, where in ((root_spec, td, "root"), (next_spec, td.get("next", None), "next")):
        if sub is None:
            continue
        for key in spec.keys(True, True):
            if key in sub.keys(True, True):
                why = spec[key].mismatch(sub.get(key))
                assert why is None, f"{what}: {where} key {key!r}: {why}"


def raw_rollout(case: Case, batch_size, steps: int = 8):
    """What the base env produces (the data a replay buffer would hold without the transform)."""
    env = case.env(batch_size)
    return env.rollout(steps, policy=zero_policy(env), break_when_any_done=False)


# ---------------------------------------------------------------------------------------- checks
def check_alone(case: Case) -> None:
    env = TransformedEnv(case.env(), case.make())
    raw = case.env().reset()
    out = case.make()(raw.clone())
    assert_matches_specs(env, out, f"{case.name} alone on a reset TensorDict")
    if not case.env_only:
        produced = set(out.keys(True, True)) - set(raw.keys(True, True))
        assert produced <= set(env.observation_spec.keys(True, True)), (produced, env.observation_spec)


def check_compose(case: Case) -> None:
    data = raw_rollout(case, ())
    alone, composed = case.make()(data.clone()), Compose(case.make())(data.clone())
    assert set(alone.keys(True, True)) == set(composed.keys(True, True))
    for key in alone.keys(True, True):
        torch.testing.assert_close(alone.get(key), composed.get(key), msg=f"{case.name}: {key!r}")
    env = TransformedEnv(case.env(), Compose(case.make()))
    check_env_specs(env)
    env.rollout(6, break_when_any_done=False)


def check_env(case: Case) -> None:
    for batch_size in ((), (BATCH,)):
        env = TransformedEnv(case.env(batch_size), case.make())
        assert check_env_specs(env) == []
        data = env.rollout(12, break_when_any_done=False)
        assert data.shape == (*batch_size, 12)
        assert_matches_specs(env, data, f"{case.name} rollout, batch {batch_size}")
        assert bool(data["next", "done"].any()), "the rollout should cross an episode end"


def check_replay(case: Case) -> None:
    data = raw_rollout(case, (BATCH,))
    env = TransformedEnv(case.env((BATCH,)), case.make())
    out = case.make()(data.clone())  # [B, T] trajectories
    assert_matches_specs(env, out, f"{case.name} on a [B, T] sample")
    flat = data.reshape(-1)[torch.randperm(data.numel())[:5]]  # [B] independent transitions
    unbatched = TransformedEnv(case.env(), case.make())  # specs without batch dims fit any sample
    assert_matches_specs(unbatched, case.make()(flat.clone()), f"{case.name} on a [B] sample")
    if case.replay_exact:
        expected = env.rollout(8, policy=zero_policy(env), break_when_any_done=False)
        for key in expected.keys(True, True):
            if case.inverse and key == env.action_key:
                continue  # the forward direction leaves recorded actions as they are
            if key in out.keys(True, True) and key not in case.skip_keys:
                torch.testing.assert_close(out.get(key), expected.get(key), msg=f"{case.name}: {key!r}")


def check_inverse(case: Case) -> None:
    base = case.env()
    env = TransformedEnv(case.env(), case.make())
    td = env.rand_action(env.reset())
    action = td.get(env.action_key).clone()
    inverted = env.transform.inv(td)
    assert base.action_spec.is_in(inverted.get(base.action_key)), base.action_spec.mismatch(inverted["action"])
    assert torch.equal(td.get(env.action_key), action), "inv must not modify the caller's TensorDict"
    assert env.action_spec.is_in(action)
    # on a replay sample: the recorded (outside) actions map back to env actions
    data = env.rollout(5, break_when_any_done=False)
    assert base.action_spec.is_in(env.transform.inv(data).get(base.action_key))


def check_serial(case: Case) -> None:
    if SerialEnv is None:
        import pytest

        pytest.skip("rlbench.envs.batched.SerialEnv is not available yet")
    serial_of_transformed = SerialEnv(2, lambda: TransformedEnv(case.env(), case.make()))
    assert check_env_specs(serial_of_transformed) == []
    serial_of_transformed.rollout(10, break_when_any_done=False)
    transformed_serial = TransformedEnv(SerialEnv(2, lambda: case.env()), case.make())
    assert check_env_specs(transformed_serial) == []
    transformed_serial.rollout(10, break_when_any_done=False)


CHECKS = {
    "alone": check_alone,
    "compose": check_compose,
    "env": check_env,
    "replay": check_replay,
    "inverse": check_inverse,
    "serial": check_serial,
}
