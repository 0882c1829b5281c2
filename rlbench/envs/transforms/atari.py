"""Atari-specific transforms: the life-loss signal of the Arcade Learning Environment."""
from __future__ import annotations

from typing import Callable

import torch

from ...specs import Binary
from .base import EnvSpecs, Transform, TransformKeyError, expand_mask, reset_mask

__all__ = ["EndOfLifeTransform", "ale_lives"]


def ale_lives(env) -> int:
    """The lives left in the ALE game under ``env`` (a :class:`~rlbench.envs.GymWrapper`, possibly transformed).

    Reads ale-py's public ``AtariEnv.ale.lives()`` through :attr:`GymWrapper.gym_env`'s ``unwrapped``.

    Raises:
        TypeError: when no ALE env is found under ``env``.
    """
    inner = env
    while hasattr(inner, "base_env"):
        inner = inner.base_env
    ale = getattr(getattr(getattr(inner, "gym_env", None), "unwrapped", None), "ale", None)
    if ale is None:
        raise TypeError(f"EndOfLifeTransform: {type(inner).__name__} is not an ALE env (GymEnv('ALE/...')): "
                        f"pass lives_fn=callable(env) -> lives")
    return int(ale.lives())


class EndOfLifeTransform(Transform):
    """Write ``("next", eol_key)``: True when a life was lost in the step (or the episode ended).

    Mnih et al. (2015) treat a life loss as the end of an episode for the value target only: the
    game goes on (nothing is reset), and a loss can bootstrap on ``end_of_life`` instead of
    ``terminated``. Machado et al. (2018) recommend against it for evaluation; it is a training signal.
    The lives are read after each step with ``lives_fn(base env)`` (default :func:`ale_lives`), so
    put it after :class:`FrameSkipTransform` to flag the skipped step in which the loss happened.
    The flag is False after a reset. Outside an env (a replay sample) the TensorDict is unchanged.

    Args:
        lives_fn: ``callable(env) -> lives`` (an int, or a tensor of the env's batch shape), called with
            the env below this transform.
        eol_key: the key of the flag (a bool ``[*batch, 1]`` observation).
        done_key: the done flag folded into it.

    Example:
        >>> import torch
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> lives = lambda env: 3 - int(env.count.item()) // 2  # a life lost every other step
        >>> env = TransformedEnv(CountingEnv(max_steps=5), EndOfLifeTransform(lives_fn=lives))
        >>> env.rollout(5)["next", "end_of_life"].squeeze(-1).tolist()
        [False, True, False, True, True]
    """

    def __init__(self, lives_fn: Callable | None = None, eol_key: str = "end_of_life", done_key: str = "done"):
        super().__init__()
        self.lives_fn = ale_lives if lives_fn is None else lives_fn
        self.eol_key, self.done_key = eol_key, done_key
        self._lives = None

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        if self.eol_key in specs.observation:
            raise TransformKeyError(f"EndOfLifeTransform: the env already has an observation {self.eol_key!r}; "
                                    f"pass eol_key='...'")
        specs.observation[self.eol_key] = Binary(1, (*specs.batch_size, 1), torch.bool, specs.device)
        return specs

    def _read_lives(self, batch_size, device) -> torch.Tensor:
        lives = torch.as_tensor(self.lives_fn(self.parent), device=device)
        return lives.reshape(-1).expand(batch_size.numel()).reshape(*batch_size, 1).clone()

    def _reset(self, td, td_reset):
        lives = self._read_lives(td_reset.batch_size, td_reset.device)
        mask = reset_mask(td, td_reset.batch_size)
        if mask is None or self._lives is None or self._lives.shape != lives.shape:
            self._lives = lives
        else:
            self._lives = torch.where(expand_mask(mask, lives), lives, self._lives)
        td_reset.set(self.eol_key, torch.zeros((*td_reset.batch_size, 1), dtype=torch.bool, device=td_reset.device))
        return td_reset

    def _step(self, td, next_td):
        lives = self._read_lives(next_td.batch_size, next_td.device)
        lost = lives < self._lives if self._lives is not None else torch.zeros_like(lives, dtype=torch.bool)
        done = next_td.get(self.done_key, None)
        next_td.set(self.eol_key, lost | done if done is not None else lost)
        self._lives = lives
        return next_td

    def forward(self, td):
        return td

    def extra_repr(self):
        return f"eol_key={self.eol_key!r}"
