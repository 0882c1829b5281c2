"""The standard Atari preprocessing over ale-py's gymnasium envs (the ``atari`` extra).

:class:`AtariPreprocessing` names the steps; :class:`AtariEnv` runs them all inside one env step on the
emulator's NumPy frames, with exactly the data of the transform chain
``TransformedEnv(GymEnv(name, frameskip=1), AtariPreprocessing().transforms())``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict

from ..common import EnvBase
from ..gym_spaces import make_action_converter
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
from ..transforms.episode import noop_generator

__all__ = ["AtariPreprocessing", "AtariEnv"]


def _big_empty(shape, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor whose memory comes from NumPy.

    NumPy asks Linux for transparent huge pages on large arrays (``madvise(MADV_HUGEPAGE)``); torch's CPU
    allocator does not. Filling a fresh rollout buffer then takes one page fault per 2 MB instead of one
    per 4 KB: 8 us instead of 38 us per ``[4, 84, 84]`` float frame stack on the test machine when the kernel
    has huge pages to give (under heavy memory churn its compaction can cost more than it saves). Like any
    ``torch.from_numpy`` tensor, the result cannot be resized in place. dtypes NumPy lacks (bfloat16) get
    ``torch.empty``.
    """
    try:
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    except TypeError:
        return torch.empty(shape, dtype=dtype)
    return torch.from_numpy(np.empty(shape, np_dtype))


@dataclass
class AtariPreprocessing:
    """The standard Atari preprocessing (Mnih et al. 2015, with Machado et al. 2018's sticky actions).

    Each field is one step; ``0`` / ``False`` turns it off. :func:`rlbench.recipes.make_env` applies these
    defaults to every ``"ALE/..."`` id (pass ``atari=AtariPreprocessing(...)`` to change them, ``atari=False``
    for the raw env).
    The ALE env is made with ``frameskip=1`` (ale-py's own v5 skip of 4 does no max-pooling). The steps are
    defined by rlbench transforms, in this order (:meth:`transforms`): ``RenameTransform`` (``"observation"``
    -> ``"pixels"``), ``NoopResetEnv``, ``TimeMaxPool``, ``FrameSkipTransform``, ``EndOfLifeTransform``,
    ``ToTensorImage``, ``GrayScale``, ``Resize``, ``CatFrames``, ``SignTransform``. The result: ``"pixels"`` float
    in ``[0, 1]`` of shape ``[frame_stack, screen_size, screen_size]`` (``[4, 84, 84]``).
    :meth:`make` returns an :class:`AtariEnv`, which runs that chain inside one env step with exactly its
    data (specs, pixels, rewards, flags, random draws) in about half the CPU time; ``make(name, fused=False)``
    gives the chain itself, ``TransformedEnv(GymEnv(name, frameskip=1, ...), transforms())``.

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
        """The preprocessing transforms for a ``GymEnv("ALE/...", frameskip=1)``, in order.

        ``TransformedEnv(GymEnv(name, frameskip=1, repeat_action_probability=...), transforms())`` is the env
        that :class:`AtariEnv` (what :meth:`make` returns) reproduces step for step.
        """
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

    def make(self, name: str, device=None, fused: bool = True) -> EnvBase:
        """One preprocessed env (unbatched).

        Args:
            name: an ALE id, e.g. ``"ALE/Pong-v5"``.
            device: where the env's tensors live.
            fused: True (the default): an :class:`AtariEnv`, which runs the whole preprocessing inside one env
                step on the emulator's NumPy frames; False: the transform chain itself,
                ``TransformedEnv(GymEnv(name, frameskip=1, ...), self.transforms())``. Both give the same
                specs and, on the CPU, the same data step for step (same seed, same actions); the fused env
                needs about half the CPU time (``benchmarks/bench_atari.py``).
        """
        if fused:
            return AtariEnv(name, self, device=device)
        from ..gym import GymEnv  # here, not at the top: gym.py imports this package (libs.gym_mujoco)

        base = GymEnv(name, frameskip=1, repeat_action_probability=float(self.repeat_action_probability),
                      device=device)
        return TransformedEnv(base, self.transforms())


class AtariEnv(EnvBase):
    """An ALE game with the whole :class:`AtariPreprocessing` done inside each env step.

    Its data are exactly those of the transform chain ``AtariPreprocessing.make(name, fused=False)``
    (``TransformedEnv(GymEnv(name, frameskip=1), preprocessing.transforms())``): the same specs and, for the
    same seed and actions, the same ``"pixels"``, rewards, done flags and ``"end_of_life"`` flags, and the
    same use of every random generator (the env's, its ``action_generator``, and the no-op generator that
    ``set_seed`` seeds as :class:`~rlbench.envs.transforms.NoopResetEnv`'s; torch's global one when
    unseeded). What differs is the cost: the
    chain runs the transformed env's step machinery for each of the ``frame_skip`` frames and works on
    torch copies of every frame; this env steps the gym env ``frame_skip`` times in a loop, max-pools the
    last two NumPy frames, reads the lives once, and hands one frame to the chain's own image steps
    (:class:`~rlbench.envs.transforms.ToTensorImage`, :class:`~rlbench.envs.transforms.GrayScale`,
    :class:`~rlbench.envs.transforms.Resize`, the very objects the chain would use, so the pixels cannot
    drift apart). A random rollout (``rollout(n)`` without a policy) also skips the per-step TensorDicts:
    each step's ``[frame_stack, ...]`` stack is written straight into the result, and the root stacks are
    copied from those at the end (each is the previous step's, except after a reset).

    Frames are processed on the CPU and the results moved to ``device``.

    Args:
        name: an ALE id, e.g. ``"ALE/Pong-v5"``.
        preprocessing: the steps to apply (default ``AtariPreprocessing()``, the Nature/Machado recipe).
        device: where the env's tensors live.

    Attributes:
        base_env: the ``GymEnv(name, frameskip=1)`` it steps; :func:`~rlbench.envs.transforms.atari.ale_lives`
            finds the emulator through it.
        preprocessing: the :class:`AtariPreprocessing` it applies.

    Example:
        >>> env = AtariEnv("ALE/Pong-v5")  # doctest: +SKIP
        >>> env.rollout(8)["next", "pixels"].shape  # doctest: +SKIP
        torch.Size([8, 4, 84, 84])
    """

    def __init__(self, name: str, preprocessing: AtariPreprocessing | None = None, device=None):
        from ..gym import GymEnv  # here, not at the top: gym.py imports this package (libs.gym_mujoco)

        prep = AtariPreprocessing() if preprocessing is None else preprocessing
        if not isinstance(prep, AtariPreprocessing):
            raise TypeError(f"AtariEnv: preprocessing must be an AtariPreprocessing, got {prep!r}")
        super().__init__(batch_size=(), device=device)
        self.preprocessing = prep
        self.base_env = GymEnv(name, frameskip=1, repeat_action_probability=float(prep.repeat_action_probability))
        access = self.base_env.numpy_access()
        if access is None:  # an ALE env has one uint8 image observation: numpy_access always applies
            raise TypeError(f"AtariEnv: {name!r} is not a single ALE env with one image observation")
        self._gym_step, self._gym_reset = access.step, access.reset
        self._ale = self.base_env.gym_env.unwrapped.ale
        # The chain this env reproduces: its specs are this env's, its image transforms process the frames.
        chain = TransformedEnv(self.base_env, prep.transforms())
        dev = self.device
        self.observation_spec = chain.observation_spec.to(dev)
        self.action_spec = chain.action_spec.to(dev)
        self.reward_spec = chain.reward_spec.to(dev)
        self.done_spec = chain.done_spec.to(dev)
        self.state_spec = chain.state_spec.to(dev)
        self._image_steps = [t for t in chain.transform if isinstance(t, (ToTensorImage, GrayScale, Resize))]
        self._noop_spec = self.base_env.action_spec  # NoopResetEnv draws from its parent's spec
        self._noop_generator = None  # set_seed seeds it as NoopResetEnv.set_seed does
        self._convert = make_action_converter(access.action_space, self.action_spec, self._raise_action_error)
        # the same conditions as AtariPreprocessing.transforms()
        self._noop_max = int(prep.noop_max) if prep.noop_max else 0
        self._skip = int(prep.frame_skip) if prep.frame_skip > 1 else 1
        self._pool = bool(prep.max_pool) and self._skip > 1
        self._eol = bool(prep.end_of_life)
        self._stack_n = int(prep.frame_stack) if prep.frame_stack > 1 else 1
        self._sign = bool(prep.sign_reward)
        self._last_frame = None  # the last raw frame (TimeMaxPool's history)
        self._lives = None  # the lives after the last step (EndOfLifeTransform's)
        self._stack = None  # the last stacked pixels (CatFrames' history)
        self._first_frame = None  # the processed frame of the last reset
        self._unsafe_td = self.device.type == "cpu" and hasattr(TensorDict, "_new_unsafe")

    @property
    def gym_env(self):
        """The wrapped gymnasium env (``base_env.gym_env``)."""
        return self.base_env.gym_env

    def render(self):
        """The base env's ``render()`` (the raw frame for an env made with ``render_mode="rgb_array"``)."""
        return self.base_env.render()

    def _raise_action_error(self, action):
        why = self.action_spec.mismatch(action) or "values out of range"
        raise ValueError(
            f"{type(self).__name__}.step: action under key {self.action_key!r} does not match action_spec: {why}. "
            f"The spec is {self.action_spec!r}."
        )

    def _check_action(self, td) -> None:
        # the action converter range-checks the integer action; only the cheap checks here, anything off
        # goes to EnvBase's check and its error messages
        action = td.get(self.action_key, None)
        spec = self._action_spec
        if action is None or action.shape != spec.shape or action.dtype != spec.dtype:
            super()._check_action(td)

    def _set_seed(self, seed) -> None:
        self.base_env.set_seed(seed)  # as TransformedEnv does: the gym env's seed waits for the next reset
        self._noop_generator = noop_generator(seed)  # as NoopResetEnv.set_seed

    # ------------------------------------------------------------- one frame
    def _process(self, frame: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frame)
        for t in self._image_steps:
            x = t._apply_transform(x)
        return x

    def _restart(self, seed=None, options=None) -> torch.Tensor:
        """Reset the game (and take the no-ops); returns the processed first frame."""
        obs = self._gym_reset(seed, options)
        if self._noop_max:
            # NoopResetEnv: the count, then each action, from the seeded no-op generator (unseeded: torch's
            # global RNG); an end resets the game
            gen = self._noop_generator
            for _ in range(int(torch.randint(0, self._noop_max + 1, (), generator=gen))):
                obs, _, term, trunc, _ = self._gym_step(self._convert(self._noop_spec.rand(generator=gen)))
                if term or trunc:
                    obs = self._gym_reset(None, None)
        self._last_frame = obs
        self._lives = int(self._ale.lives())
        self._first_frame = self._process(obs)
        return self._first_frame

    def _advance(self, action) -> tuple:
        """One agent step: ``(processed frame, reward, terminated, truncated, end_of_life)``."""
        step = self._gym_step
        obs, r, term, trunc, _ = step(action)
        reward = np.float32(r)
        prev = self._last_frame
        for _ in range(self._skip - 1):  # FrameSkipTransform: stop at the end of the episode
            if term or trunc:
                break
            prev = obs
            obs, r, term, trunc, _ = step(action)
            reward = reward + np.float32(r)
        frame = np.maximum(obs, prev) if self._pool else obs  # TimeMaxPool(T=2) over every frame
        self._last_frame = obs
        term, trunc = bool(term), bool(trunc)
        eol = False
        if self._eol:
            lives = int(self._ale.lives())
            eol = lives < self._lives or term or trunc
            self._lives = lives
        if self._sign:
            reward = np.sign(reward)
        return self._process(frame), reward, term, trunc, eol

    # ---------------------------------------------------------------- EnvBase
    def _reset(self, td=None, seed=None, options=None):
        frame = self._restart(seed, options)
        n = self._stack_n
        self._stack = torch.cat([frame] * n, -3) if n > 1 else frame
        out = {"pixels": self._stack.to(self.device)}
        if self._eol:
            out["end_of_life"] = torch.zeros(1, dtype=torch.bool, device=self.device)
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    def _step(self, td):
        frame, reward, term, trunc, eol = self._advance(self._convert(td.get(self.action_key)))
        if self._stack_n > 1:  # CatFrames: a new tensor each step, earlier outputs may still be referenced
            old = self._stack
            size = frame.shape[-3]
            self._stack = torch.cat([old.narrow(-3, size, old.shape[-3] - size), frame], -3)
        else:
            self._stack = frame
        dev = self.device
        data = {
            "pixels": self._stack.to(dev),
            "reward": torch.tensor([reward], dtype=torch.float32, device=dev),
            "terminated": torch.tensor([term], device=dev),
            "truncated": torch.tensor([trunc], device=dev),
            "done": torch.tensor([term or trunc], device=dev),
        }
        if self._eol:
            data["end_of_life"] = torch.tensor([eol], device=dev)
        if self._unsafe_td:
            return TensorDict._new_unsafe(data, batch_size=self.batch_size, device=dev)
        return TensorDict(data, batch_size=self.batch_size, device=dev)

    def rollout(self, max_steps: int, policy=None, break_when_any_done: bool = True, auto_reset: bool = True,
                tensordict=None):
        """Like :meth:`EnvBase.rollout`; a random rollout (no policy, from a reset) takes a fast path.

        The fast path draws each action as :meth:`rand_action` does, steps the game with :meth:`_step`'s
        code and writes each stack into preallocated buffers: the output is the generic path's, key for
        key, and the env is left in the same state.
        """
        fast = (policy is None and auto_reset and tensordict is None
                and type(self)._step is AtariEnv._step and type(self)._reset is AtariEnv._reset)
        if not fast:
            return super().rollout(max_steps, policy, break_when_any_done, auto_reset, tensordict)
        if int(max_steps) < 1:
            raise ValueError(f"rollout: max_steps must be >= 1, got {max_steps}")
        return self._random_rollout(int(max_steps), break_when_any_done)

    def _random_rollout(self, n: int, break_when_any_done: bool):
        self.reset()
        spec, gen, convert, advance = self.action_spec, self.action_generator, self._convert, self._advance
        k = self._stack_n
        ring = [self._first_frame] * k  # the frames of the current stack, oldest first
        starts = {0: self._stack}  # the root stacks that are not the previous step's next stack: resets
        # written step by step, and the roots copied from it at the end: the output is the only large
        # memory touched (no frame is kept for later)
        next_pixels = _big_empty((n, *self._stack.shape), self._stack.dtype)
        actions = []
        reward = np.zeros((n, 1), np.float32)
        term, trunc = np.zeros((n, 1), bool), np.zeros((n, 1), bool)
        eol, root_eol = np.zeros((n, 1), bool), np.zeros((n, 1), bool)
        steps = n
        for t in range(n):
            action = spec.rand(generator=gen)  # as rand_action draws it
            actions.append(action)
            frame, reward[t, 0], te, tr, eol[t, 0] = advance(convert(action))
            ring = ring[1:] + [frame]
            torch.cat(ring, -3, out=next_pixels[t])
            term[t, 0], trunc[t, 0] = te, tr
            if te or tr:
                if break_when_any_done:
                    steps = t + 1
                    break
                if t < n - 1:  # as step_and_maybe_reset; the last step of a rollout is not reset
                    ring = [self._restart()] * k
                    starts[t + 1] = torch.cat(ring, -3)
            elif t < n - 1:
                root_eol[t + 1, 0] = eol[t, 0]  # step_mdp carries the flag to the next root
        s = steps
        if s < n:
            next_pixels = _big_empty((s, *next_pixels.shape[1:]), next_pixels.dtype).copy_(next_pixels[:s])
        root_pixels = _big_empty(next_pixels.shape, next_pixels.dtype)
        root_pixels[1:] = next_pixels[:-1]  # step_mdp: each root is the previous step's next stack ...
        for t, stack in starts.items():  # ... except after a reset
            root_pixels[t] = stack
        self._stack = next_pixels[s - 1].clone()  # CatFrames' history after the last step
        dev = self.device
        false = torch.zeros((s, 1), dtype=torch.bool, device=dev)
        term_t, trunc_t = torch.from_numpy(term[:s]).to(dev), torch.from_numpy(trunc[:s]).to(dev)
        out = TensorDict({}, batch_size=[s], device=dev)
        out.set("pixels", root_pixels.to(dev))
        if self._eol:
            out.set("end_of_life", torch.from_numpy(root_eol[:s]).to(dev))
        out.set("done", false)
        out.set("terminated", false.clone())
        out.set("truncated", false.clone())
        out.set(self.action_key, torch.stack(actions).to(dev))
        nxt = {"pixels": next_pixels.to(dev), "reward": torch.from_numpy(reward[:s]).to(dev),
               "done": term_t | trunc_t, "terminated": term_t, "truncated": trunc_t}
        if self._eol:
            nxt["end_of_life"] = torch.from_numpy(eol[:s]).to(dev)
        out.set("next", TensorDict(nxt, batch_size=[s], device=dev))
        return out

    def close(self) -> None:
        if not self.is_closed:
            self.base_env.close()
        super().close()
