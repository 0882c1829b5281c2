"""Env makers: the callables that batched envs and collectors call to build one env each.

A batched env (``SerialEnv``, ``ParallelEnv``) and a collector take either one maker, repeated for
every sub-env, or a list of them. :class:`EnvCreator` binds keyword arguments to a maker (TorchRL's
name for the same idea) and reads the env's specs once, in the calling process, when asked.
:func:`resolve_makers` turns the accepted spellings into one list and names what was wrong.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Sequence

from .common import EnvBase

__all__ = ["EnvCreator", "resolve_makers"]


class EnvCreator:
    """A picklable env maker with bound keyword arguments: ``EnvCreator(fn, kwargs)()`` is ``fn(**kwargs)``.

    Lambdas and closures travel to worker processes (batched envs cloudpickle their makers), so
    ``EnvCreator`` is only needed to bind arguments or to read the specs without keeping an env:
    :attr:`specs` builds one env on first use, copies its specs and closes it.

    Args:
        create_env_fn: a callable returning an :class:`~rlbench.envs.EnvBase`.
        create_env_kwargs: keyword arguments passed to it on every call.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> make = EnvCreator(CountingEnv, {"max_steps": 3})
        >>> make().rollout(5).shape, make.specs["action_spec"].shape
        (torch.Size([3]), torch.Size([]))
    """

    def __init__(self, create_env_fn: Callable[..., EnvBase], create_env_kwargs: Mapping[str, Any] | None = None):
        if not callable(create_env_fn):
            raise TypeError(f"EnvCreator: create_env_fn must be a callable that builds an env, got "
                            f"{type(create_env_fn).__name__}")
        self.create_env_fn = create_env_fn
        self.create_env_kwargs = dict(create_env_kwargs or {})
        self._specs: dict | None = None

    def __call__(self, **kwargs) -> EnvBase:
        return self.create_env_fn(**{**self.create_env_kwargs, **kwargs})

    @property
    def specs(self) -> dict:
        """The env's specs (``observation_spec``, ``action_spec``, ...), read once from a throw-away env."""
        if self._specs is None:
            env = self()
            try:
                self._specs = {name: getattr(env, name).clone() for name in
                               ("observation_spec", "action_spec", "reward_spec", "done_spec", "state_spec")}
            finally:
                env.close()
        return self._specs

    def __getstate__(self) -> dict:
        return {"create_env_fn": self.create_env_fn, "create_env_kwargs": self.create_env_kwargs, "_specs": None}

    def __repr__(self) -> str:
        name = getattr(self.create_env_fn, "__qualname__", repr(self.create_env_fn))
        return f"EnvCreator({name}, create_env_kwargs={self.create_env_kwargs})"


def resolve_makers(owner: str, n: int, make_env=None, *, create_env_fn=None,
                   create_env_kwargs: Mapping | Sequence[Mapping] | None = None,
                   size_name: str = "num_envs") -> list[Callable[[], EnvBase]]:
    """``n`` env makers from rlbench's ``make_env`` or TorchRL's ``create_env_fn``/``create_env_kwargs``.

    Args:
        owner: the class named in error messages.
        n: how many sub-envs.
        make_env: one maker, or a list of ``n``.
        create_env_fn: TorchRL's name for ``make_env`` (give one of the two).
        create_env_kwargs: keyword arguments for every maker, or a list of ``n`` dicts (one per sub-env).
        size_name: the owner's name for ``n`` in error messages (``num_envs``, ``num_workers``).

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> makers = resolve_makers("SerialEnv", 2, create_env_fn=CountingEnv,
        ...                         create_env_kwargs=[{"max_steps": 2}, {"max_steps": 5}])
        >>> [int(m().max_steps) for m in makers]
        [2, 5]
    """
    if make_env is not None and create_env_fn is not None:
        raise TypeError(f"{owner}: give make_env or create_env_fn (TorchRL's name for it), not both")
    make_env = create_env_fn if make_env is None else make_env
    if make_env is None:
        raise TypeError(f"{owner}: missing the env maker: pass make_env (a callable returning an env, e.g. "
                        f"lambda: GymEnv('CartPole-v1')) or create_env_fn")
    if isinstance(make_env, EnvBase):
        raise TypeError(f"{owner}: make_env must be a callable that builds an env (e.g. lambda: "
                        f"GymEnv('CartPole-v1')), got the env {type(make_env).__name__} itself; pass the function")
    if isinstance(make_env, Sequence):
        if len(make_env) != n:
            raise ValueError(f"{owner}: got {len(make_env)} make_env callables for {size_name}={n}; "
                             f"pass one callable, or a list of exactly {n}")
        makers = list(make_env)
    else:
        makers = [make_env] * n
    for i, make in enumerate(makers):
        if not callable(make):
            raise TypeError(f"{owner}: make_env[{i}] must be a callable that builds an env (e.g. "
                            f"lambda: GymEnv('CartPole-v1')), got {type(make).__name__}; pass the function, not an env")
    if create_env_kwargs is None:
        return makers
    if isinstance(create_env_kwargs, Mapping):
        per_env = [dict(create_env_kwargs)] * n
    else:
        per_env = [dict(kw) for kw in create_env_kwargs]
        if len(per_env) != n:
            raise ValueError(f"{owner}: got {len(per_env)} create_env_kwargs dicts for {size_name}={n}; "
                             f"pass one dict, or a list of exactly {n}")
    return [functools.partial(make, **kw) if kw else make for make, kw in zip(makers, per_env)]
