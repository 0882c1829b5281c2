"""A counting env that writes an action mask: action 1 is allowed at odd counts only."""
import torch

from rlbench.envs.transforms import Transform, TransformedEnv
from rlbench.specs import Binary
from rlbench.testing.transforms import counting_env


class ParityMask(Transform):
    """Writes ``"action_mask"``: ``[True, count odd]`` (action 0 always allowed, so zero policies work)."""

    def _call(self, td):
        count = td.get("observation", None)
        if count is None:
            return td
        odd = count.long().remainder(2).bool()
        return td.set("action_mask", torch.cat([torch.ones_like(odd), odd], -1))

    def transform_observation_spec(self, spec):
        spec["action_mask"] = Binary(2, (*spec.shape, 2), torch.bool)
        return spec


def masked_counting_env(batch_size=()):
    """``counting_env`` (staggered episodes) plus a parity action mask."""
    return TransformedEnv(counting_env(batch_size), ParityMask())
