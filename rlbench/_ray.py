"""What the Ray-backed collector and replay buffer share: importing Ray, joining or starting it, moving batches.

Ray is an optional dependency (the ``ray`` extra): it is imported only when a Ray object is built.

Joining or starting Ray (:func:`connect`): if this process is already connected, that instance is used; if
an address is given (``ray_init_config={"address": "auto"}`` or ``RAY_ADDRESS``) it is joined; otherwise a
new local instance is started (``address="local"``) with the dashboard off. Ray binds a local instance to
the machine's network address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` was set before Ray was
imported (Ray reads it once, at import); so when a local instance is to be started and Ray is not imported
yet, that variable is set (unless the user set it) and the instance listens on 127.0.0.1 only. A process
that joins a real cluster must not have it set: its own node would then advertise 127.0.0.1, which the
other machines cannot reach.

Moving batches (:func:`to_wire`/:func:`from_wire`): a TensorDict travels as ``(batch_size, [(key,
array)])`` with NumPy arrays, which Ray's object store hands to the reader without a copy (a torch tensor
would be pickled into the message), and the reader joins or copies them once into fresh tensors.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tensordict import TensorDictBase

from .envs.utils import td_from_leaves, tensor_leaves

logger = logging.getLogger(__name__)

LOOPBACK_ENV_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_LOCAL_ADDRESSES = ("auto", "local")


def import_ray(who: str):
    """``import ray``, or an ImportError that says which extra to install."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"{who} needs Ray: pip install 'rlbench[ray]' (or pip install 'ray>=2.9')") from err
    return ray


def _check_reachable(who: str, address: str) -> None:
    """Fail within seconds, naming the address, when a ``host:port`` cluster address does not answer.

    ``ray.init`` itself keeps retrying an unreachable address for a long time.
    """
    if address in _LOCAL_ADDRESSES or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        port_number = int(port)
    except ValueError:
        return  # not host:port; let Ray judge it
    try:
        socket.create_connection((host, port_number), timeout=5).close()
    except OSError as err:
        raise ConnectionError(
            f"{who}: the Ray cluster at {address!r} does not answer ({err}); start its head with "
            f"`ray start --head --port={port_number}` on {host}, or give the address that `ray start` printed"
        ) from None


def connect(who: str, ray_init_config: Mapping[str, Any] | None) -> bool:
    """Join the Ray instance this process uses, the cluster at the given address, or start a local one.

    Returns:
        Whether a local instance was started here (its owner then shuts it down).
    """
    config = dict(ray_init_config or {})
    address = config.get("address") or os.environ.get("RAY_ADDRESS")
    if not address and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ENV_VAR, "0")  # read by Ray at import: a local instance on 127.0.0.1
    ray = import_ray(who)
    if ray.is_initialized():
        if config:
            logger.info("%s: this process is already connected to Ray; ray_init_config=%r is not used", who, config)
        return False
    if address:
        _check_reachable(who, str(address))
        ray.init(**config)
        return False
    # "local": a new instance, even where `ray start` left a cluster running on this machine (which a bare
    # ray.init() would join)
    config["address"] = "local"
    config.setdefault("include_dashboard", False)
    ray.init(**config)
    return True


def kill_actors(who: str, actors) -> None:
    """``ray.kill`` each actor without restart; one already gone is skipped (logged at debug level)."""
    ray = import_ray(who)
    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            logger.debug("%s: could not kill an actor (already gone)", who, exc_info=True)


def disconnect(started: bool) -> None:
    """Shut Ray down if :func:`connect` started it."""
    if started:
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()


def _node_summary(node: Mapping) -> dict:
    return {k: v for k, v in node["Resources"].items() if not k.startswith("node:") and k != "object_store_memory"}


def check_resources(who: str, options: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError when no live node of the cluster has the resources an actor asks for.

    Without this an actor that fits nowhere stays pending for ever. (A cluster with an autoscaler may
    add such a node later; rlbench does not wait for one.)
    """
    ray = import_ray(who)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for i, opts in enumerate(options):
        need = {"CPU": opts.get("num_cpus", 1), "GPU": opts.get("num_gpus", 0), "memory": opts.get("memory", 0),
                **dict(opts.get("resources") or {})}
        need = {k: float(v) for k, v in need.items() if v}
        if not any(all(n["Resources"].get(k, 0.0) >= v for k, v in need.items()) for n in nodes):
            raise ValueError(
                f"{who}: no node of the Ray cluster has what actor {i} asks for ({need}); the nodes have "
                f"{[_node_summary(n) for n in nodes]}. Ask for less in remote_config, or add a node with these "
                f"resources (`ray start --address=... --num-cpus=... --resources='{{...}}'`)"
            )


def to_wire(data):
    """A TensorDict as ``("td", batch_size, [(key, array or tensor)])``; anything else unchanged."""
    if not isinstance(data, TensorDictBase):
        return data
    leaves = []
    for key, value in tensor_leaves(data):
        value = value.detach().cpu()
        try:
            leaves.append((key, value.numpy()))
        except TypeError:  # a dtype NumPy lacks (bfloat16...): the tensor itself, pickled
            leaves.append((key, value))
    return ("td", tuple(data.batch_size), leaves)


def _is_wire(data) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and data[0] == "td"


def _tensor(value) -> torch.Tensor:
    """A fresh, writable tensor from an array (possibly a read-only view of Ray's object store) or a tensor."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))
    return value.clone()


def from_wire(data):
    """Inverse of :func:`to_wire`: a TensorDict in fresh memory (anything else unchanged)."""
    if not _is_wire(data):
        return data
    _, batch_size, leaves = data
    return td_from_leaves([(k, _tensor(v)) for k, v in leaves], batch_size, torch.device("cpu"), copy=False)


def join_wire(parts: Sequence) -> TensorDictBase:
    """Several :func:`to_wire` batches joined in one copy: concatenated on dim 0 (stacked if one-dimensional)."""
    batch_sizes = [tuple(p[1]) for p in parts]
    stack = len(batch_sizes[0]) == 1
    first = batch_sizes[0]
    batch_size = (len(parts), *first) if stack else (sum(b[0] for b in batch_sizes), *first[1:])
    maps = [dict(p[2]) for p in parts]
    if any(m.keys() != maps[0].keys() for m in maps):
        raise ValueError(f"cannot join batches with different keys: {[sorted(map(str, m)) for m in maps]}")
    leaves = []
    for key in maps[0]:
        values = [m[key] for m in maps]
        if all(isinstance(v, np.ndarray) for v in values):
            joined = torch.from_numpy(np.stack(values) if stack else np.concatenate(values))
        else:
            values = [_tensor(v) for v in values]
            joined = torch.stack(values) if stack else torch.cat(values)
        leaves.append((key, joined))
    return td_from_leaves(leaves, batch_size, torch.device("cpu"), copy=False)
