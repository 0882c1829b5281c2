"""The standard Atari preprocessing over ale-py's gymnasium envs (the ``atari`` extra)."""
from __future__ import annotations

from dataclasses import dataclass

from ..common import EnvBase
from ..transforms import (
    CatFrames,
    Compose,
    EndOfLifeTransform,
    FrameSkipTransform,
    GrayScale,
    NoopResetEnv,
    RenameTransform,
    Resize,
    SignTransform,
    TimeMaxPool,
    ToTensorImage,
    TransformedEnv,
)

__all__ = ["AtariPreprocessing"]


@dataclass
class AtariPreprocessing:
    """The standard Atari preprocessing (Mnih et al. 2015, with Machado et al. 2018's sticky actions).

    Each field is one step; ``0`` / ``False`` turns it off. :func:`rlbench.recipes.make_env` applies these
    defaults to every ``"ALE/..."`` id (pass ``atari=AtariPreprocessing(...)`` to change them, ``atari=False``
    for the raw env).
    The ALE env is made with ``frameskip=1`` (ale-py's own v5 skip of 4 does no max-pooling) and the frame
    skip, max-pooling and the rest are rlbench transforms, in this order: ``RenameTransform`` (``"observation"``
    -> ``"pixels"``), ``NoopResetEnv``, ``TimeMaxPool``, ``FrameSkipTransform``, ``EndOfLifeTransform``,
    ``ToTensorImage``, ``GrayScale``, ``Resize``, ``CatFrames``, ``SignTransform``. The result: ``"pixels"`` float
    in ``[0, 1]`` of shape ``[frame_stack, screen_size, screen_size]`` (``[4, 84, 84]``).

    Attributes:
        noop_max: at each reset, up to this many random frames (drawn uniformly in ``{0..noop_max}``), 30 in
            the Nature DQN, so episodes start from varied states.
        frame_skip: repeat each action this many frames, summing the rewards (4).
        max_pool: the frame of a skipped step is the max of its last two frames (Atari flickers).
        end_of_life: write ``("next", "end_of_life")``, True when a life is lost, for value bootstrapping;
            the game is not reset.
        grayscale: one luma channel instead of RGB.
        screen_size: resize to ``screen_size x screen_size`` (84); ``0`` keeps ``210 x 160``.
        frame_stack: stack the last this many frames along the channel dim (4); ``0`` or ``1`` stacks none.
        sign_reward: reward -> its sign in ``{-1, 0, 1}`` (the Nature DQN's reward clipping).
        repeat_action_probability: ale-py's sticky actions: each frame the previous action repeats with this
            probability. 0.25 is ALE v5's default and Machado et al.'s recommendation (the emulator is
            deterministic otherwise; no-ops alone do not make it stochastic); 0.0 gives the Nature setting.

    Example:
        >>> env = AtariPreprocessing().make("ALE/Pong-v5")  # doctest: +SKIP
        >>> env.observation_spec["pixels"].shape  # doctest: +SKIP
        torch.Size([4, 84, 84])
    """

    noop_max: int = 30
    frame_skip: int = 4
    max_pool: bool = True
    end_of_life: bool = True
    grayscale: bool = True
    screen_size: int = 84
    frame_stack: int = 4
    sign_reward: bool = True
    repeat_action_probability: float = 0.25

    def transforms(self) -> Compose:
        """The preprocessing transforms for a ``GymEnv("ALE/...", frameskip=1)``, in order."""
        steps = [RenameTransform(["observation"], ["pixels"])]
        if self.noop_max:
            steps.append(NoopResetEnv(int(self.noop_max)))
        if self.max_pool and self.frame_skip > 1:
            steps.append(TimeMaxPool(["pixels"], T=2))
        if self.frame_skip > 1:
            steps.append(FrameSkipTransform(int(self.frame_skip)))
        if self.end_of_life:
            steps.append(EndOfLifeTransform())
        steps.append(ToTensorImage())
        if self.grayscale:
            steps.append(GrayScale())
        if self.screen_size:
            steps.append(Resize(int(self.screen_size), int(self.screen_size)))
        if self.frame_stack > 1:
            steps.append(CatFrames(int(self.frame_stack), dim=-3))
        if self.sign_reward:
            steps.append(SignTransform())
        return Compose(*steps)

    def make(self, name: str, device=None) -> EnvBase:
        """One preprocessed env (unbatched)."""
        from ..gym import GymEnv  # here, not at the top: gym.py imports this package (libs.gym_mujoco)

        base = GymEnv(name, frameskip=1, repeat_action_probability=float(self.repeat_action_probability),
                      device=device)
        return TransformedEnv(base, self.transforms())
