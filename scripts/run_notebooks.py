"""Execute tutorial notebooks in place, so their committed outputs are fresh and in order.

    python scripts/run_notebooks.py notebooks/02_environments_and_transforms.ipynb [more.ipynb ...]

Runs on the project's "rlbench" kernel with the notebook's own default parameters (nbval re-runs
notebooks the same way, so these outputs are what it compares against).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path: Path, kernel: str = "rlbench") -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    client = NotebookClient(nb, kernel_name=kernel, timeout=1800, resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(nb, path)
    print(f"executed {path}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        run(Path(arg))
