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


def test_readme_torchrl_migration_example_runs():
    """The rlbench half of the side-by-side TorchRL tutorial runs as written."""
    text = README.read_text()
    section = text.split("## Coming from TorchRL", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the migration guide has one rlbench block"
    assert "Collector(" in blocks[0] and 'loss_vals["loss_value"]' in blocks[0]
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    assert int(scope["max_length"]) > 0
