"""Old home of the off-policy recipes' helpers, kept so that code importing from here still runs.

Import from the public modules instead: ``from rlbench.recipes import transitions, updates_due,
OffPolicyConfig``; the network builders from :mod:`rlbench.recipes.models`; ``ScaleToBounds`` from
:mod:`rlbench.modules`.
"""
from ..modules import ScaleToBounds
from .config import OffPolicyConfig
from .models import (
    action_box,
    action_half_range,
    make_deterministic_actor,
    make_exploration,
    make_qvalue_network,
    require_bounded_actions,
)
from .replay import transitions, updates_due

__all__ = ["OffPolicyConfig", "ScaleToBounds", "action_box", "action_half_range", "make_deterministic_actor",
           "make_exploration", "make_qvalue_network", "require_bounded_actions", "transitions", "updates_due"]
