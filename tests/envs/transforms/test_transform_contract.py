"""Every transform passes the shared checklist of :mod:`rlbench.testing.transforms`."""
import pytest
from _mask_env import masked_counting_env

from rlbench.envs.transforms import (
    ActionMask,
    CatFrames,
    CatTensors,
    CenterCrop,
    Compose,
    DeviceCastTransform,
    DoubleToFloat,
    EndOfLifeTransform,
    ExcludeTransform,
    FlattenObservation,
    FrameSkipTransform,
    GrayScale,
    InitTracker,
    NoopResetEnv,
    ObservationNorm,
    PermuteTransform,
    RenameTransform,
    Resize,
    RewardClipping,
    RewardScaling,
    RewardSum,
    SelectTransform,
    SignTransform,
    SqueezeTransform,
    StepCounter,
    TensorDictPrimer,
    TimeMaxPool,
    ToTensorImage,
    Transform,
    UnsqueezeTransform,
    VecNorm,
    VideoRecorder,
)
from rlbench.specs import Categorical, Unbounded
from rlbench.testing import TransformCase, check_transform_contract
from rlbench.testing.transforms import (
    TRANSFORM_CHECKS,
    continuous_counting_env,
    double_counting_env,
    image_counting_env,
    pixel_counting_env,
)


def _counting_lives(env):
    """Lives of a counting env (one lost every other step); a constant 3 for envs without a count."""
    count = getattr(env, "count", None)
    return 3 if count is None else (3 - count.squeeze(-1).long() // 2)


class _VideoList:
    """A logger that keeps the videos a VideoRecorder writes."""

    def __init__(self):
        self.videos = []

    def log_video(self, name, frames, step, fps=30):
        self.videos.append((name, frames, step))


CASES = [
    TransformCase("ToTensorImage", ToTensorImage, env=pixel_counting_env),
    TransformCase("Resize", lambda: Resize(6, 4), env=image_counting_env),
    TransformCase("GrayScale", GrayScale, env=image_counting_env),
    TransformCase("CenterCrop", lambda: CenterCrop(6, 4), env=image_counting_env),
    TransformCase("CatFrames", lambda: CatFrames(3, dim=-1)),
    TransformCase("CatFrames-pixels", lambda: CatFrames(2, dim=-3), env=image_counting_env),
    TransformCase("ObservationNorm", lambda: ObservationNorm(loc=1.0, scale=2.0)),
    TransformCase("VecNorm", VecNorm, replay_exact=False),
    TransformCase("RewardScaling", lambda: RewardScaling(0.5, 2.0)),
    TransformCase("RewardClipping", lambda: RewardClipping(-0.5, 0.5)),
    TransformCase("RewardSum", RewardSum),
    TransformCase("StepCounter", StepCounter),
    TransformCase("StepCounter-max_steps", lambda: StepCounter(max_steps=2), replay_exact=False),
    TransformCase("DoubleToFloat", DoubleToFloat, env=double_counting_env, inverse=True),
    TransformCase("FlattenObservation", lambda: FlattenObservation(-3), env=image_counting_env),
    TransformCase("UnsqueezeTransform",
                  lambda: UnsqueezeTransform(-1, in_keys=["observation"], in_keys_inv=["action"]),
                  env=continuous_counting_env, inverse=True),
    TransformCase("CatTensors", lambda: CatTensors(["observation", "total"], "vector")),
    TransformCase("NoopResetEnv", lambda: NoopResetEnv(2), replay_exact=False, env_only=True),
    TransformCase("FrameSkipTransform", lambda: FrameSkipTransform(2), replay_exact=False, env_only=True),
    TransformCase("InitTracker", InitTracker),
    TransformCase("RenameTransform", lambda: RenameTransform(["observation"], ["count"])),
    TransformCase("ExcludeTransform", lambda: ExcludeTransform("total")),
    TransformCase("SignTransform", lambda: SignTransform(in_keys=["reward", "observation"])),
    TransformCase("TimeMaxPool", lambda: TimeMaxPool(in_keys=["observation"]), replay_exact=False, env_only=True),
    TransformCase("TimeMaxPool-pixels", TimeMaxPool, env=pixel_counting_env, replay_exact=False, env_only=True),
    TransformCase("EndOfLifeTransform", lambda: EndOfLifeTransform(lives_fn=_counting_lives), replay_exact=False,
                  env_only=True),
    TransformCase("SqueezeTransform", lambda: SqueezeTransform(-1, in_keys=["observation", "total"])),
    TransformCase("PermuteTransform", lambda: PermuteTransform((-1, -3, -2), in_keys=["pixels"]),
                  env=pixel_counting_env),
    TransformCase("SelectTransform", lambda: SelectTransform("observation")),
    TransformCase("DeviceCastTransform", lambda: DeviceCastTransform("cpu"), inverse=True),
    TransformCase("DeviceCastTransform-continuous", lambda: DeviceCastTransform("cpu", "cpu"),
                  env=continuous_counting_env, inverse=True),
    TransformCase("TensorDictPrimer", lambda: TensorDictPrimer(
        {"hidden": Unbounded((2, 3)), "count": Categorical(4, (1,))}, default_value={"hidden": 0.5})),
    TransformCase("ActionMask", ActionMask, env=masked_counting_env, inverse=True),
    TransformCase("VideoRecorder", lambda: VideoRecorder(_VideoList(), "contract"), env=pixel_counting_env),
    TransformCase("VideoRecorder-CHW", lambda: VideoRecorder(_VideoList(), "contract", skip=2), env=image_counting_env),
    TransformCase("Compose", lambda: Compose(StepCounter(), RewardSum(), ObservationNorm(loc=0.5, scale=3.0))),
]

# Checks a case cannot pass by design, with the reason (and the test that covers what remains).
NOT_APPLICABLE = {
    # a SerialEnv of ActionMask envs draws rand_action from its own stacked spec, which cannot see the
    # sub-envs' masks; ActionMask over a SerialEnv is checked in test_transforms_action_mask.py
    ("ActionMask", "serial"),
}

PARAMS = [
    pytest.param(case, name, id=f"{case.name}-{name}")
    for case in CASES
    for name in TRANSFORM_CHECKS
    if (name != "inverse" or case.inverse) and (case.name, name) not in NOT_APPLICABLE
]


@pytest.mark.parametrize("case, check", PARAMS)
def test_contract(case, check):
    check_transform_contract(case, checks=[check])


def test_every_exported_transform_has_a_case():
    import rlbench.envs.transforms as T

    infrastructure = {"Transform", "TransformedEnv", "EnvSpecs", "TransformKeyError", "time_dim", "episode_starts"}
    exported = set(T.__all__) - infrastructure
    covered = {type(case.make()).__name__ for case in CASES}
    assert exported <= covered, f"transforms without a contract case: {sorted(exported - covered)}"


class _Leaky(Transform):
    """Writes a key that no spec declares: the checklist must catch it."""

    def _call(self, td):
        return td.set("leak", td.get("observation") * 2)


class _WrongDtype(Transform):
    """Turns the float observation into int64 while its spec still says float32."""

    def _apply_transform(self, x):
        return x.long()


def test_checklist_catches_an_undeclared_key():
    with pytest.raises(AssertionError, match=r"_Leaky failed the 'alone' check: .*\['leak'\]"):
        check_transform_contract(lambda: _Leaky())


def test_checklist_catches_a_spec_mismatch_in_the_env():
    with pytest.raises(AssertionError, match=r"(?s)failed the 'env' check: .*key 'observation': dtype"):
        check_transform_contract(lambda: _WrongDtype(in_keys=["observation"]), checks=["env"])


def test_checklist_rejects_unknown_checks_and_stray_fields():
    with pytest.raises(ValueError, match="unknown check 'speed'"):
        check_transform_contract(RewardSum, checks=["speed"])
    with pytest.raises(TypeError, match="TransformCase fields"):
        check_transform_contract(CASES[0], inverse=True)
