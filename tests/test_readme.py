"""The README's tour is code users copy first: it must run as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs():
    text = README.read_text()
    tour = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", tour, flags=re.S)
    assert blocks, "the README tour has no python block"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
