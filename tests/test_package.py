"""Packaging contracts: light import, one source of dependencies, the README's two commands."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _normalise(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_import_rlbench_is_light():
    """`import rlbench` must not pull in Jupyter, widgets or plotting (they cost seconds)."""
    code = (
        "import sys, rlbench, rlbench.envs, rlbench.specs, rlbench.collectors, rlbench.buffers, rlbench.modules, "
        "rlbench.objectives, rlbench.trainers, rlbench.recipes\n"
        "heavy = [m for m in ('ipywidgets', 'anywidget', 'jupyter_client', 'IPython', 'matplotlib', 'gym', "
        "'pygame') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_environment_yml_matches_pyproject():
    """environment.yml lists exactly pyproject's core, notebooks and dev dependencies."""
    project = _pyproject()["project"]
    wanted = set(project["dependencies"])
    for extra in ("notebooks", "dev"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {d for d in pip_section if not d.startswith("-")}
    wanted_n, listed_n = {_normalise(r) for r in wanted}, {_normalise(r) for r in listed}
    assert listed_n == wanted_n, (
        f"environment.yml and pyproject.toml disagree.\n  only in pyproject: {sorted(wanted_n - listed_n)}\n"
        f"  only in environment.yml: {sorted(listed_n - wanted_n)}"
    )
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python, "environment.yml must pin a python version"


def test_readme_quick_start_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(bash scripts/\S+)", quick, flags=re.M)
    assert commands == ["bash scripts/lab.sh", "bash scripts/test.sh"], commands
    for command in commands:
        assert (ROOT / command.split()[1]).exists()
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
