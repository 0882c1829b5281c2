"""Gymnasium's MuJoCo envs (``HalfCheetah-v5``, ...): the checks :class:`~rlbench.envs.GymEnv` runs first.

Gymnasium registers its MuJoCo envs whether or not MuJoCo is installed; they need the ``mujoco``
extra (``mujoco`` and gymnasium's renderer's ``imageio``). Their ``rgb_array`` renderer picks its
OpenGL backend from ``MUJOCO_GL`` and, unset, tries a desktop window (GLFW), which fails on a machine
without a display. :func:`prepare_gym_mujoco` runs before ``gymnasium.make``: for an id whose entry
point is in ``gymnasium.envs.mujoco`` it says which extra is missing, and it chooses ``MUJOCO_GL``
(:func:`~rlbench.envs.libs.mujoco_gl.select_mujoco_gl`) before gymnasium's renderer imports mujoco.
Any other id is left alone, without importing anything.
"""
from __future__ import annotations

import importlib.util

from .mujoco_gl import render_help, select_mujoco_gl

__all__ = ["MUJOCO_EXTRA", "is_gym_mujoco", "prepare_gym_mujoco"]

MUJOCO_EXTRA = 'pip install "rlbench[mujoco]"'
_ENTRY_PREFIX = "gymnasium.envs.mujoco"
# what gymnasium.envs.mujoco imports when it is first imported (its renderer module imports all three)
_NEEDS = ("mujoco", "imageio")


def is_gym_mujoco(name: str) -> bool:
    """Whether gymnasium id ``name`` is registered with an entry point in ``gymnasium.envs.mujoco``.

    Example:
        >>> is_gym_mujoco("HalfCheetah-v5"), is_gym_mujoco("CartPole-v1"), is_gym_mujoco("NoSuchEnv-v0")
        (True, False, False)
    """
    from gymnasium.envs.registration import registry

    spec = registry.get(name)
    entry = getattr(spec, "entry_point", None)
    return isinstance(entry, str) and entry.startswith(_ENTRY_PREFIX)


def prepare_gym_mujoco(name: str, from_pixels: bool = False) -> bool:
    """Before ``gymnasium.make(name)``: check the ``mujoco`` extra and choose ``MUJOCO_GL`` for a MuJoCo id.

    Args:
        name: the gymnasium id about to be made.
        from_pixels: the env will render (``render_mode="rgb_array"``): refuse early when no headless
            OpenGL backend exists, saying what to install.

    Returns:
        True when ``name`` is one of gymnasium's MuJoCo envs (and all is ready), False for any other id.

    Raises:
        ImportError: a MuJoCo id without the ``mujoco`` extra (the message names it).
        RuntimeError: ``from_pixels`` where neither OSMesa nor EGL is installed.

    Example:
        >>> prepare_gym_mujoco("CartPole-v1")
        False
    """
    if not is_gym_mujoco(name):
        return False
    missing = [module for module in _NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        raise ImportError(f"{name} is one of gymnasium's MuJoCo envs and needs {' and '.join(missing)}, "
                          f"which {'is' if len(missing) == 1 else 'are'} not installed: {MUJOCO_EXTRA}")
    if select_mujoco_gl() is None and from_pixels:
        raise RuntimeError(f"{name} with from_pixels=True cannot render headless. {render_help()}")
    return True
