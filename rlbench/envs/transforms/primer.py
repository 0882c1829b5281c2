"""``TensorDictPrimer``: entries the env does not write (e.g. recurrent states), filled at reset."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ...specs import Composite, Spec
from .base import Transform

__all__ = ["TensorDictPrimer"]


class TensorDictPrimer(Transform):
    """Add the entries declared by ``primers`` to each reset output, and carry them through steps.

    At reset each entry is filled with ``default_value`` (or a random member of its spec with
    ``random=True``). At each step an entry the env below did not write under ``"next"`` takes the value
    of the step's input, so a policy that writes it (a recurrent state, say) finds its own value in the
    next observation; an untouched entry keeps its reset value. The entries join the observation spec.
    Applied to a TensorDict outside an env (a replay sample), the transform fills the entries it lacks.

    Args:
        primers: the entries' specs, without the env's batch dims: a ``Composite`` or a dict of key to
            spec (e.g. ``{"hidden": Unbounded((2, 8))}``).
        default_value (keyword only, as ``random``: TorchRL's positional order differs): the reset value,
            a number or a dict of key to number (keys not in it get 0).
        random: fill the entries with ``spec.rand()`` at reset instead of ``default_value``.
        **specs: more entries as keyword arguments (``TensorDictPrimer(hidden=Unbounded((8,)))``).

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.specs import Unbounded
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), TensorDictPrimer({"hidden": Unbounded((2,))}, default_value=0.5))
        >>> env.observation_spec["hidden"].shape, env.reset()["hidden"].tolist()
        (torch.Size([2]), [0.5, 0.5])
        >>> env.rollout(2)["next", "hidden"].tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """

    def __init__(self, primers: Composite | dict | None = None, *, default_value=0.0, random: bool = False,
                 **specs: Spec):
        if isinstance(primers, Composite):
            primers = dict(primers.items(True, True))
        if specs:
            primers = {**(primers or {}), **specs}
        if not isinstance(primers, dict) or not primers:
            raise TypeError(f"TensorDictPrimer: primers is a non-empty Composite or dict of specs, got {primers!r}")
        for key, spec in primers.items():
            if not isinstance(spec, Spec) or isinstance(spec, Composite):
                raise TypeError(f"TensorDictPrimer: the spec of {key!r} must be a leaf Spec, got {spec!r}")
        keys = list(primers)
        super().__init__(in_keys=[], out_keys=[])
        self.primer_keys = keys
        self.primers = {key: primers[key] for key in keys}
        if isinstance(default_value, dict):
            unknown = set(default_value) - set(keys)
            if unknown:
                raise KeyError(f"TensorDictPrimer: default_value names keys that are not primers: {sorted(unknown)}")
            self.default_value = {key: float(default_value.get(key, 0.0)) for key in keys}
        else:
            self.default_value = {key: float(default_value) for key in keys}
        self.random = bool(random)

    def _value(self, key, batch_size: torch.Size, device) -> torch.Tensor:
        spec = self.primers[key]
        if self.random:
            value = spec.rand(batch_size)
        else:
            value = torch.full((*batch_size, *spec.shape), self.default_value[key], dtype=spec.dtype,
                               device=spec.device)
        return value if device is None else value.to(device)

    def _call(self, td: TensorDictBase) -> TensorDictBase:
        for key in self.primer_keys:
            if key not in td.keys(True, True):
                td.set(key, self._value(key, td.batch_size, td.device))
        return td

    def _reset(self, td: TensorDictBase | None, td_reset: TensorDictBase) -> TensorDictBase:
        # fresh values for every entry; in a partial reset the env keeps the other sub-envs' values
        for key in self.primer_keys:
            td_reset.set(key, self._value(key, td_reset.batch_size, td_reset.device))
        return td_reset

    def _step(self, td: TensorDictBase, next_td: TensorDictBase) -> TensorDictBase:
        written = next_td.keys(True, True)
        for key in self.primer_keys:
            if key in written:
                continue
            value = td.get(key, None)
            next_td.set(key, self._value(key, next_td.batch_size, next_td.device) if value is None else value)
        return next_td

    def transform_observation_spec(self, spec: Composite) -> Composite:
        for key in self.primer_keys:
            spec[key] = self.primers[key].expand(*spec.shape, *self.primers[key].shape).to(spec.device)
        return spec

    def extra_repr(self) -> str:
        return f"primers={self.primer_keys}, random={self.random}"
