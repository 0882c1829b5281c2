#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with everything the workbench and
# the test suite need. Idempotent: a second run only reinstalls when pyproject.toml changed.
#
#   RLBENCH_PYTHON       interpreter to build the venv from (default: python3; needs >= 3.10)
#   RLBENCH_TORCH        torch requirement installed first (default: torch==2.13.0)
#   RLBENCH_TORCH_INDEX  optional index URL for torch, e.g. a CPU-only wheel index
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${RLBENCH_PYTHON:-python3}
"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"rlbench needs Python >= 3.10, found {sys.version.split()[0]} (set RLBENCH_PYTHON)")
PYCHECK

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $("$PY" --version)"
    "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=.venv/.rlbench-install-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && python -c "import rlbench, torch, tensordict" 2>/dev/null; then
    echo "[setup] .venv is up to date"
    exit 0
fi

# torch goes first and pinned: an unpinned torch resolves to a multi-GB CUDA build, while the
# pinned release is found as a CPU wheel where one is provided locally (and works anywhere).
if ! python -c "import torch" 2>/dev/null; then
    torch_req=${RLBENCH_TORCH:-torch==2.13.0}
    echo "[setup] installing $torch_req"
    if [ -n "${RLBENCH_TORCH_INDEX:-}" ]; then
        python -m pip install -q --progress-bar off "$torch_req" --index-url "$RLBENCH_TORCH_INDEX"
    else
        python -m pip install -q --progress-bar off "$torch_req"
    fi
fi

# "dm-control", not "dm_control": pip < 23.3 does not normalise extra names (PEP 685) and would skip it
echo "[setup] installing rlbench with the notebooks, dev, gym, dm_control, atari, mujoco and ray extras"
python -m pip install -q --progress-bar off -e ".[notebooks,dev,gym,dm-control,atari,mujoco,ray]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import rlbench, torch, tensordict, gymnasium, papermill, nbval, dm_control, mujoco, ale_py, imageio" \
    || { echo "[setup] installation failed: see the pip output above"; exit 1; }

# The widget browser tests drive the system's Chromium through Playwright (Playwright's own browser
# download is neither needed nor attempted). Install Debian's package when we can; without it those
# tests skip locally and fail under CI=true.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "[setup] could not install chromium: the browser tests will be skipped"
fi

# dm_control renders headless through OSMesa on a machine without a GPU (rlbench picks MUJOCO_GL=osmesa
# when libOSMesa is there). Install Debian's package when we can; without it the dm_control pixel tests
# skip locally and fail under CI=true.
if ! ldconfig -p 2>/dev/null | grep libOSMesa >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian's libosmesa6 for headless MuJoCo rendering"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null) \
        || echo "[setup] could not install libosmesa6: the dm_control pixel tests will be skipped"
fi

# The project's own Jupyter kernel, inside the venv: notebooks and tests run on this interpreter.
python -m ipykernel install --sys-prefix --name rlbench --display-name "Python (rlbench)" >/dev/null
echo "$want" > "$stamp"
echo "[setup] done: $(python -c 'import torch, tensordict, gymnasium; print(f"torch {torch.__version__}, tensordict {tensordict.__version__}, gymnasium {gymnasium.__version__}")')"
