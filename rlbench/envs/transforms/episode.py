"""Episode-structure transforms: step counts and time limits, first-step flags, no-op resets, frame skips."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ...specs import Binary, Bounded, Unbounded
from ..common import check_frame_skip
from ..utils import step_mdp
from .base import EnvSpecs, Transform, TransformKeyError, episode_starts, reset_mask, time_dim

__all__ = ["StepCounter", "InitTracker", "NoopResetEnv", "FrameSkipTransform"]


def _time_index(td: TensorDictBase, tdim: int) -> torch.Tensor:
    steps = td.shape[tdim]
    idx = torch.arange(steps, device=td.device).reshape(steps, *([1] * (td.batch_dims - tdim - 1)))
    return idx.expand(td.batch_size[tdim:]).expand(td.batch_size)


def _steps_into_episode(td: TensorDictBase) -> torch.Tensor:
    """Steps since each frame's episode began, ``[*batch, 1]`` int64, rebuilt along the time dim.

    A batch without a time dim is read as independent first steps (all zeros).
    """
    tdim = time_dim(td)
    shape = (*td.batch_size, 1)
    if tdim is None:
        return torch.zeros(shape, dtype=torch.int64, device=td.device)
    return (_time_index(td, tdim) - episode_starts(td, tdim)).reshape(shape)


class StepCounter(Transform):
    """Count the steps of each episode in ``"step_count"``; optionally truncate at ``max_steps``.

    The count is 0 after a reset and ``previous + 1`` after each step. When ``max_steps`` is set and
    the count reaches it, the step's ``truncated`` and ``done`` flags are set (gymnasium's
    ``TimeLimit``). In a batched env a partial reset restarts only the reset sub-envs' counts. On a
    batch outside an env, counts are rebuilt along a time dim when there is one (see
    :func:`~rlbench.envs.transforms.base.time_dim`; done flags are left as recorded), and are 0 / 1
    (a first step) otherwise.

    Args:
        max_steps: the time limit (``None``: count only).
        step_count_key: where to write the count. The torch-native classic-control envs already
            count steps under ``"step_count"``: pick another name there.
        truncated_key: the done flag to set at the limit.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=100), StepCounter(max_steps=3))
        >>> td = env.rollout(10)
        >>> td["next", "step_count"].squeeze(-1).tolist(), td["next", "truncated"].squeeze(-1).tolist()
        ([1, 2, 3], [False, False, True])
    """

    def __init__(self, max_steps: int | None = None, step_count_key="step_count", truncated_key="truncated"):
        super().__init__()
        if max_steps is not None and int(max_steps) < 1:
            raise ValueError(f"StepCounter: max_steps must be >= 1 or None, got {max_steps}")
        self.max_steps = None if max_steps is None else int(max_steps)
        self.step_count_key, self.truncated_key = step_count_key, truncated_key

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        key = self.step_count_key
        if key in specs.observation:
            raise TransformKeyError(
                f"StepCounter: the env already has an observation {key!r} (the classic-control envs count "
                f"steps themselves); pass StepCounter(step_count_key='...') with another name"
            )
        if self.max_steps is not None and self.truncated_key not in specs.done:
            raise TransformKeyError(
                f"StepCounter: truncated_key {self.truncated_key!r} is not a done flag of the env; "
                f"done keys: {specs.done.keys(True)}"
            )
        # Unbounded even with max_steps: counts rebuilt from recorded data (``forward`` on a replay
        # sample of an env without the limit) may exceed it.
        specs.observation[key] = Unbounded((*specs.batch_size, 1), torch.int64, specs.device)
        return specs

    def _reset(self, td, td_reset):
        td_reset.set(self.step_count_key, torch.zeros((*td_reset.batch_size, 1), dtype=torch.int64,
                                                      device=td_reset.device))
        return td_reset

    def _step(self, td, next_td):
        prev = td.get(self.step_count_key, None)
        if prev is None:
            count = torch.ones((*next_td.batch_size, 1), dtype=torch.int64, device=next_td.device)
        else:
            count = prev + 1
        next_td.set(self.step_count_key, count)
        if self.max_steps is not None:
            limit = count >= self.max_steps
            next_td.set(self.truncated_key, next_td.get(self.truncated_key) | limit)
            next_td.set("done", next_td.get("done") | limit)
        return next_td

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        root = _steps_into_episode(td)
        td.set(self.step_count_key, root)
        nxt = td.get("next", None)
        if nxt is not None:
            nxt.set(self.step_count_key, root + 1)
        return td

    def extra_repr(self):
        return f"max_steps={self.max_steps}, step_count_key={self.step_count_key!r}"


class InitTracker(Transform):
    """Flag the first step of each episode: ``"is_init"`` is True after a reset, False after a step.

    Recurrent policies read it to reset their hidden state. On a batch outside an env it is rebuilt
    along a time dim when there is one, and True (a first step) otherwise.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=2), InitTracker())
        >>> env.rollout(4, break_when_any_done=False)["is_init"].squeeze(-1).tolist()
        [True, False, True, False]
    """

    def __init__(self, init_key: str = "is_init"):
        super().__init__()
        self.init_key = init_key

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        if self.init_key in specs.observation:
            raise TransformKeyError(
                f"InitTracker: the env already has an observation {self.init_key!r}; pass init_key='...'"
            )
        specs.observation[self.init_key] = Binary(1, (*specs.batch_size, 1), torch.bool, specs.device)
        return specs

    def _reset(self, td, td_reset):
        td_reset.set(self.init_key, torch.ones((*td_reset.batch_size, 1), dtype=torch.bool, device=td_reset.device))
        return td_reset

    def _step(self, td, next_td):
        next_td.set(self.init_key, torch.zeros((*next_td.batch_size, 1), dtype=torch.bool, device=next_td.device))
        return next_td

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        root = _steps_into_episode(td) == 0
        td.set(self.init_key, root)
        nxt = td.get("next", None)
        if nxt is not None:
            nxt.set(self.init_key, torch.zeros_like(root))
        return td


_NOOP_SEED_OFFSET = 0x5851F42D4C957F2D  # another odd constant: the no-op stream differs from the env's and actions'


def noop_generator(seed: int | None) -> torch.Generator | None:
    """The generator no-op resets draw from after ``env.set_seed(seed)`` (``None`` for an unseeded env)."""
    if seed is None:
        return None
    gen = torch.Generator()
    gen.manual_seed((int(seed) + _NOOP_SEED_OFFSET) % 2**63)
    return gen


class NoopResetEnv(Transform):
    """After each reset, take a number of random actions, so episodes start from varied states.

    This is the Atari protocol of Mnih et al. 2015, with random actions as TorchRL does.

    The number of steps is drawn uniformly from ``{0, ..., noops}`` at each reset when ``random``,
    else it is ``noops``. After ``env.set_seed(s)`` the number and the random actions come from the
    transform's own generator seeded from ``s``, so a seeded env reproduces its episodes; unseeded, from
    torch's global RNG. Sub-envs whose episode ends during the no-ops are reset in place. All
    sub-envs of a batched env take the same number of steps; a *partial* reset takes none, since
    stepping the batch would move the sub-envs that are mid-episode.

    Args:
        noops: the (maximum) number of random steps.
        random: draw the number instead of always using ``noops``.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=100), NoopResetEnv(noops=4, random=False))
        >>> env.reset()["observation"].item()
        4.0
    """

    def __init__(self, noops: int = 30, random: bool = True):
        super().__init__()
        if int(noops) < 0:
            raise ValueError(f"NoopResetEnv: noops must be >= 0, got {noops}")
        self.noops, self.random = int(noops), bool(random)
        self.generator: torch.Generator | None = None  # set by the env's set_seed; None: torch's global RNG

    def _reset(self, td, td_reset):
        mask = reset_mask(td, td_reset.batch_size)
        if mask is not None and not bool(mask.all()):
            return td_reset
        parent = self.parent
        if parent is None:
            return td_reset
        gen = self.generator
        n = int(torch.randint(0, self.noops + 1, (), generator=gen)) if self.random else self.noops
        root = td_reset
        for _ in range(n):
            if gen is None:
                root = parent.rand_action(root)
            else:
                root.set(parent.action_key, parent.action_spec.rand(generator=gen))
            _, root = parent.step_and_maybe_reset(root)
        return root

    def set_seed(self, seed: int | None) -> None:
        """Seed the no-op count and actions from ``seed`` (``None``: torch's global RNG again)."""
        self.generator = noop_generator(seed)

    def forward(self, td):
        return td

    def extra_repr(self):
        return f"noops={self.noops}, random={self.random}"


class FrameSkipTransform(Transform):
    """Repeat each action ``frame_skip`` times; the step's reward is the sum of the rewards.

    The repeats stop early at the first sub-step where any sub-env is done (stepping a finished
    episode further would be wrong), so ``("next", ...)`` is always a real transition's outcome.
    Transforms before this one in the list see every sub-step; those after it see one step.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=5), FrameSkipTransform(2))
        >>> td = env.rollout(10)
        >>> td["next", "observation"].squeeze(-1).tolist(), td["next", "reward"].squeeze(-1).tolist()
        ([2.0, 4.0, 5.0], [2.0, 2.0, 1.0])
    """

    def __init__(self, frame_skip: int = 1):
        super().__init__()
        self.frame_skip = check_frame_skip(frame_skip, "FrameSkipTransform")

    def transform_reward_spec(self, spec):
        if isinstance(spec, Bounded) and self.frame_skip > 1:
            k = self.frame_skip
            low = torch.minimum(spec.low, spec.low * k)
            high = torch.maximum(spec.high, spec.high * k)
            return Bounded(low, high, spec.shape, spec.dtype, spec.device)
        return spec

    def _step(self, td, next_td):
        if self.frame_skip == 1:
            return next_td
        parent = self.parent
        if parent is None:
            raise RuntimeError("FrameSkipTransform steps its parent env: it must sit in a TransformedEnv")
        # ``td`` holds the action in the base env's terms (every inverse transform already ran): a
        # parent *view* steps from there, a real base env (possibly itself transformed) takes it as is.
        step = parent._step_inverted if getattr(parent, "_is_view", False) else parent.step
        reward_key, action_key = parent.reward_key, parent.action_key
        reward = next_td.get(reward_key)
        current = next_td
        for _ in range(self.frame_skip - 1):
            if bool(current.get("done").any()):
                break
            prev = td.exclude("next")
            prev.set("next", current)
            root = step_mdp(prev, action_key=action_key, reward_key=reward_key, exclude_action=False)
            current = step(root).get("next")
            reward = reward + current.get(reward_key)
        current.set(reward_key, reward)
        return current

    def forward(self, td):
        return td

    def extra_repr(self):
        return f"frame_skip={self.frame_skip}"
