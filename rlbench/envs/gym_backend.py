"""Which gym library an env comes from, and what making one needs first.

gymnasium is the primary backend; the legacy ``gym`` package (0.26, and the pre-0.26 4-tuple API)
is imported only when asked for, and its passive env checker, which fails under NumPy 2, is
removed from the wrapper chain. ALE ids register ale-py's envs the first time one is asked for.
"""
from __future__ import annotations

import logging

__all__ = ["import_backend", "infer_backend", "strip_legacy_checker", "ensure_ale_registered"]

logger = logging.getLogger("rlbench.envs.gym")  # the messages belong to GymWrapper's log

_GYM_EXTRA = "pip install rlbench[gym]  (installs gym==0.26.2)"


def import_backend(backend: str):
    """The ``gymnasium`` or legacy ``gym`` module; a missing gym names the extra that installs it."""
    if backend == "gymnasium":
        import gymnasium

        return gymnasium
    if backend == "gym":
        try:
            import gym
        except ImportError as err:
            raise ImportError(
                f"backend='gym' needs the legacy gym package, which is not installed: {_GYM_EXTRA}"
            ) from err
        return gym
    raise ValueError(f"backend must be 'gymnasium' or 'gym', got {backend!r}")


_ATARI_EXTRA = 'pip install "rlbench[atari]"'


def ensure_ale_registered(name: str, module) -> None:
    """Register ale-py's ``"ALE/..."`` ids with gymnasium the first time one is asked for.

    Importing ``ale_py`` registers them (``gymnasium.register_envs(ale_py)`` is the explicit form), so a user
    never has to. An unknown game raises a ``ValueError`` naming the id and the games that exist.
    """
    if not isinstance(name, str) or not name.startswith("ALE/") or name in module.registry:
        return
    try:
        import ale_py
    except ImportError as err:
        raise ImportError(f"GymEnv({name!r}): Atari ids need ale-py (which ships the ROMs), not installed: "
                          f"{_ATARI_EXTRA}") from err
    module.register_envs(ale_py)
    if name in module.registry:
        return
    games = sorted({s.name for s in module.registry.values() if s.namespace == "ALE"})
    game = name[len("ALE/"):].split("-v")[0]
    if game in games:
        versions = sorted(s.id for s in module.registry.values() if s.namespace == "ALE" and s.name == game)
        raise ValueError(f"GymEnv({name!r}): ale-py {ale_py.__version__} has no such version of {game}: "
                         f"it registers {', '.join(versions)}")
    raise ValueError(f"GymEnv({name!r}): ale-py {ale_py.__version__} has no game (or ROM) {game!r}; its "
                     f"{len(games)} games are: {', '.join(games)}")


def infer_backend(env) -> str:
    """``"gymnasium"`` or ``"gym"``: the library whose classes ``env`` is built from."""
    for cls in type(env).__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("gymnasium", "gym"):
            return root
    return "gymnasium"  # a duck-typed env: its API is detected per call anyway


def strip_legacy_checker(env):
    """Remove gym 0.26's PassiveEnvChecker from a wrapper chain: it uses ``np.bool8``, gone in NumPy 2."""
    def is_checker(e):
        return type(e).__name__ == "PassiveEnvChecker" and type(e).__module__.startswith("gym.")

    while is_checker(env):
        logger.debug("GymWrapper: unwrapping gym's PassiveEnvChecker (it fails under NumPy 2)")
        env = env.env
    outer = env
    for _ in range(64):  # a wrapper chain, bounded in case some env keeps an unrelated `.env`
        inner = getattr(outer, "env", None)
        if inner is None:
            break
        if is_checker(inner):
            logger.debug("GymWrapper: removing gym's PassiveEnvChecker from %r (it fails under NumPy 2)", env)
            outer.env = inner.env
            continue
        outer = inner
    return env
