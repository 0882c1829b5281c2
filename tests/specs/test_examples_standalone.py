"""Every example in rlbench.specs runs as written in a fresh session (no names injected by conftest)."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["rlbench.specs.base", "rlbench.specs.composite", "rlbench.specs.continuous", "rlbench.specs.discrete"]


@pytest.mark.parametrize("module", MODULES)
def test_examples_run_in_an_empty_namespace(module):
    mod = importlib.import_module(module)
    failures = []
    for test in doctest.DocTestFinder().find(mod, globs={}):
        if not test.examples:
            continue
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        lines = []
        result = runner.run(test, out=lines.append)
        if result.failed:
            failures.append(f"{test.name}:\n{''.join(lines)}")
    assert not failures, "\n".join(failures)
