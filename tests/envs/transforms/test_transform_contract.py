"""Every transform passes the shared checklist of ``transform_contract.py``."""
import pytest
from transform_contract import CASES, CHECKS

PARAMS = [
    pytest.param(case, check, id=f"{case.name}-{name}")
    for case in CASES
    for name, check in CHECKS.items()
    if name != "inverse" or case.inverse
]


@pytest.mark.parametrize("case, check", PARAMS)
def test_contract(case, check):
    check(case)


def test_every_exported_transform_has_a_case():
    import rlbench.envs.transforms as T

    infrastructure = {"Transform", "TransformedEnv", "EnvSpecs", "TransformKeyError", "time_dim", "episode_starts"}
    exported = set(T.__all__) - infrastructure
    covered = {type(case.make()).__name__ for case in CASES}
    assert exported <= covered, f"transforms without a contract case: {sorted(exported - covered)}"
