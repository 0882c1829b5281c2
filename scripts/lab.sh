#!/usr/bin/env bash
# Set everything up, then start JupyterLab on the tutorial notebooks.
# Extra arguments go to jupyter lab (e.g. scripts/lab.sh --port 8890 --no-browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
extra=()
# Containers (and CI machines) often run as root, where Jupyter refuses to start without this flag.
if [ "$(id -u)" = "0" ]; then extra+=(--allow-root); fi
exec jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 "${extra[@]}" "$@"
