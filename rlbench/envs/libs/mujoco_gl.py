"""Headless OpenGL for MuJoCo: pick ``MUJOCO_GL`` before mujoco is first imported.

MuJoCo's Python packages (``mujoco``, ``dm_control``) choose their OpenGL backend once, when they are
imported, from the ``MUJOCO_GL`` environment variable. Unset, dm_control tries a desktop window
(GLFW) first, which cannot render on a machine without a display. :func:`select_mujoco_gl` sets the
variable, only when the user has not, to a backend that renders without a display:

- ``"egl"`` where a GPU is visible (an NVIDIA or DRM render device) and ``libEGL`` is installed;
- else ``"osmesa"`` (software rendering) when ``libOSMesa`` is installed;
- else ``"egl"`` when only ``libEGL`` is installed (Mesa's EGL also renders in software);
- else nothing: rendering then fails, and :func:`render_help` says what to install.

A value the user set is always kept, and so is the choice of a dm_control imported before this ran.
(``mujoco``'s own ``mujoco.Renderer`` chooses when ``mujoco`` is imported; dm_control renders with its
own contexts and chooses when ``dm_control`` is.)
"""
from __future__ import annotations

import ctypes.util
import glob
import logging
import os
import sys

__all__ = ["select_mujoco_gl", "render_help"]

logger = logging.getLogger(__name__)

_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dri/renderD*")
# what select_mujoco_gl decided, for the error messages: (value, who chose it)
_CHOICE: list = []


def _gpu_visible() -> bool:
    return any(glob.glob(pattern) for pattern in _GPU_NODES)


def _has_library(name: str) -> bool:
    return ctypes.util.find_library(name) is not None


def _no_render_thread_for_osmesa(value: str) -> None:
    """With OSMesa, render on the calling thread (``DISABLE_RENDER_THREAD_OFFLOADING=1``) unless told otherwise.

    dm_control gives each render context its own thread and frees a context by handing that thread a
    job and waiting. When the cyclic garbage collector frees an unclosed pixel env *on that thread* (it
    runs wherever Python happens to allocate), the thread waits for itself and the process hangs
    (reproduced here: pixel envs in reference cycles with frequent collections). The thread exists so a
    GPU context can stay current on one thread; a software OSMesa context has nothing to gain from it.
    Read by dm_control when it is first imported, so this only acts before that.
    """
    if value == "osmesa" and "dm_control._render" not in sys.modules:
        os.environ.setdefault("DISABLE_RENDER_THREAD_OFFLOADING", "1")


def select_mujoco_gl() -> str | None:
    """Set ``MUJOCO_GL`` for headless rendering unless it is set already; returns the value in effect.

    With OSMesa it also sets ``DISABLE_RENDER_THREAD_OFFLOADING=1`` (unless set): dm_control then renders
    on the calling thread, which avoids a hang of its per-context render threads (see
    ``_no_render_thread_for_osmesa``).

    Call it before the first ``import dm_control`` (``DMControlEnv`` does) and, for ``mujoco.Renderer``,
    before the first ``import mujoco``. It only acts on Linux, where EGL and OSMesa exist; elsewhere,
    and once dm_control was imported (its choice is made), it changes nothing.

    Returns:
        ``MUJOCO_GL`` after the call, or None when it is unset.

    Example:
        >>> import os
        >>> value = select_mujoco_gl()
        >>> value == os.environ.get("MUJOCO_GL")
        True
    """
    if "MUJOCO_GL" in os.environ:
        if not _CHOICE:
            _CHOICE.append((os.environ["MUJOCO_GL"], "you (the MUJOCO_GL environment variable)"))
        _no_render_thread_for_osmesa(os.environ["MUJOCO_GL"])
        return os.environ["MUJOCO_GL"]
    if not sys.platform.startswith("linux") or "dm_control._render" in sys.modules:
        return None  # dm_control has chosen already (mujoco.Renderer chooses when mujoco is imported)
    egl, osmesa = _has_library("EGL"), _has_library("OSMesa")
    if egl and _gpu_visible():
        value, why = "egl", "a GPU is visible and libEGL is installed"
    elif osmesa:
        value, why = "osmesa", "no GPU is visible and libOSMesa is installed"
    elif egl:
        value, why = "egl", "libOSMesa is missing but libEGL is installed (Mesa's EGL renders in software)"
    else:
        logger.info("select_mujoco_gl: neither libEGL nor libOSMesa found; leaving MUJOCO_GL unset")
        return None
    os.environ["MUJOCO_GL"] = value
    _no_render_thread_for_osmesa(value)
    _CHOICE[:] = [(value, f"rlbench, because {why}")]
    logger.info("select_mujoco_gl: MUJOCO_GL=%s (%s)", value, why)
    return value


def render_help() -> str:
    """What to install or set when MuJoCo cannot render headless (for error messages).

    Example:
        >>> "apt-get install libosmesa6" in render_help()
        True
    """
    value = os.environ.get("MUJOCO_GL")
    if value is None:
        state = "MUJOCO_GL is unset and neither libEGL nor libOSMesa was found"
    else:
        who = next((w for v, w in _CHOICE if v == value), "you (the MUJOCO_GL environment variable)")
        state = f"MUJOCO_GL={value} was chosen by {who}"
    return (
        f"{state}. Headless rendering needs OSMesa (software, any machine; Debian/Ubuntu: "
        f"apt-get install libosmesa6, then run with MUJOCO_GL=osmesa) or EGL (with a GPU driver's EGL, or "
        f"Mesa's: apt-get install libegl1, then MUJOCO_GL=egl). MUJOCO_GL is read once, when mujoco is "
        f"first imported: set it before that, or restart the Python process after installing."
    )
