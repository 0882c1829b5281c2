"""One Ray cluster per test process, shared by the Ray tests (imported as ``_ray_session``, like _setups.py).

Not a conftest.py: with ``--doctest-modules`` a second conftest module clashes with tests/conftest.py. A test
module uses it with::

    from _ray_session import ray_cluster  # noqa: F401  (the fixture, found by name)
    pytestmark = pytest.mark.usefixtures("ray_cluster")

The cluster is two raylets of one CPU each (``ray.cluster_utils.Cluster``): the "local instance with two
CPUs" of the issue, and at the same time two nodes, told apart by the custom resources ``NODE_A``/``NODE_B``,
so actors can be placed on different nodes. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (set before Ray is
imported) keeps every raylet on 127.0.0.1, so two xdist workers each run their own cluster side by side.
"""
import os

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before anything imports ray: Ray reads it at import

NODE_A, NODE_B = "rlbench_test_node_a", "rlbench_test_node_b"


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster (1 CPU each, dashboard off) this process is connected to, for the whole session.

    Imported into several test modules, pytest may call it once per module: the first call starts the
    cluster and later ones reuse it (the first one's teardown stops it at the end of the session).
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        yield _CLUSTER[0] if _CLUSTER else None
        return
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {NODE_A: 1},
                                                            "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, resources={NODE_B: 1})
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        _CLUSTER.append(cluster)
        yield cluster
    finally:
        _CLUSTER.clear()
        ray.shutdown()
        cluster.shutdown()


_CLUSTER: list = []
