"""Key transforms: renaming, removing and selecting observation entries."""
from __future__ import annotations

from .base import EnvSpecs, Transform, TransformKeyError

__all__ = ["RenameTransform", "ExcludeTransform", "SelectTransform"]


def _check_observation_keys(transform, keys, specs: EnvSpecs, verb: str) -> None:
    protected = {specs.reward_key, *specs.done.keys(True)}
    for key in keys:
        if key in protected:
            raise TransformKeyError(
                f"{type(transform).__name__}: cannot {verb} {key!r}: the reward and done keys are fixed by the env "
                f"contract (losses and collectors read them)"
            )


class RenameTransform(Transform):
    """Rename observation keys (``create_copy=True`` keeps the originals as well).

    ``in_keys_inv``/``out_keys_inv`` rename state keys the env reads: the caller writes
    ``out_keys_inv`` and the env below reads them as ``in_keys_inv``.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), RenameTransform(["observation"], ["count"]))
        >>> sorted(env.reset().keys())
        ['count', 'done', 'terminated', 'total', 'truncated']
    """

    def __init__(self, in_keys, out_keys, in_keys_inv=None, out_keys_inv=None, create_copy: bool = False):
        super().__init__(in_keys, out_keys, in_keys_inv, out_keys_inv)
        self.create_copy = bool(create_copy)

    def _call(self, td):
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            value = td.get(in_key, None)
            if value is not None:
                td.set(out_key, value)
                if not self.create_copy and out_key != in_key:
                    del td[in_key]
        return td

    def _inv_apply_transform(self, x):
        return x

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        self._check_keys(specs)
        _check_observation_keys(self, self.in_keys, specs, "rename")
        if specs.action_key in self.in_keys_inv:
            raise TransformKeyError("RenameTransform: renaming the action is not supported (EnvBase.action_key)")
        obs = specs.observation
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            if in_key in specs.state and not self.create_copy and in_key not in self.in_keys_inv:
                raise TransformKeyError(
                    f"RenameTransform: {in_key!r} is also in the env's state_spec (the env reads it back each "
                    f"step); pass in_keys_inv=[{in_key!r}], out_keys_inv=[{out_key!r}] too, or create_copy=True"
                )
            obs[out_key] = obs[in_key].clone()
            if not self.create_copy and out_key != in_key:
                del obs[in_key]
        specs.state = self.transform_state_spec(specs.state)
        return specs

    def extra_repr(self):
        return f"in_keys={self.in_keys}, out_keys={self.out_keys}, create_copy={self.create_copy}"


class ExcludeTransform(Transform):
    """Remove observation keys from the env's outputs (and from its observation spec).

    Keys the env reads back at each step (its ``state_spec``) cannot be removed.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), ExcludeTransform("total"))
        >>> sorted(env.observation_spec.keys())
        ['observation']
    """

    def __init__(self, *keys):
        if len(keys) == 1 and isinstance(keys[0], list):
            keys = tuple(keys[0])
        super().__init__(list(keys))

    def _call(self, td):
        for key in self.in_keys:
            if key in td.keys(True):
                del td[key]
        return td

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        self._check_keys(specs)
        _check_observation_keys(self, self.in_keys, specs, "exclude")
        for key in self.in_keys:
            if key in specs.state:
                raise TransformKeyError(
                    f"ExcludeTransform: {key!r} is in the env's state_spec (the env reads it back at each step); "
                    f"it cannot be removed"
                )
            del specs.observation[key]
        return specs


class SelectTransform(Transform):
    """Keep only the given observation keys (the complement of :class:`ExcludeTransform`).

    Observations not listed are removed from the env's outputs and its observation spec; the reward, done
    flags, the action and the keys the env reads back at each step (its ``state_spec``) always stay.
    Outside an env, before it has seen one's specs, it removes nothing.

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), SelectTransform("observation"))
        >>> sorted(env.observation_spec.keys()), sorted(env.reset().keys())
        (['observation'], ['done', 'observation', 'terminated', 'truncated'])
    """

    def __init__(self, *keys):
        if len(keys) == 1 and isinstance(keys[0], list):
            keys = tuple(keys[0])
        super().__init__(list(keys))
        self._drop: list = []

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        self._check_keys(specs)
        _check_observation_keys(self, self.in_keys, specs, "select")
        keep = set(self.in_keys)
        self._drop = [k for k in specs.observation.keys(True, True) if k not in keep and k not in specs.state]
        for key in self._drop:
            del specs.observation[key]
        return specs

    def _call(self, td):
        keys = td.keys(True)
        for key in self._drop:
            if key in keys:
                del td[key]
        return td

    def extra_repr(self):
        return f"keys={self.in_keys}"
