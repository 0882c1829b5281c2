"""Doctests of the simulator wrappers need their optional packages (the ``dm_control`` extra, a headless GL).

Where those are missing the doctests are left out, as the tests in tests/envs/libs skip; under CI=true,
where the test command installs them, they always run (and fail if the install did not work).
"""
import ctypes.util
import importlib.util
import os

collect_ignore = []
if os.environ.get("CI", "").lower() != "true":
    has_gl = ctypes.util.find_library("OSMesa") or ctypes.util.find_library("EGL")
    if importlib.util.find_spec("dm_control") is None or not has_gl:
        collect_ignore.append("dm_control.py")
