"""Tensor specifications: what shape, dtype, device and range a value may take.

A spec describes one entry of an environment's TensorDict (an observation, an action, a reward) or,
as a :class:`Composite`, a whole nested group of them. Specs carry the environment's batch size in
their leading dimensions: a batch of 4 CartPoles has ``action_spec.shape == (4,)``.

Every spec answers the same small set of questions:

- ``is_in(x)``: does ``x`` belong to the spec?  ``mismatch(x)`` says *why not*, in words.
- ``rand(shape)``, ``zero(shape)``: a random / all-zero member with extra leading dims ``shape``.
- ``project(x)``: the closest member of the spec to ``x`` (clamping, rounding, arg-max).
- ``expand(*shape)``, ``to(device)``, ``clone()``, ``==``.

Membership tolerates extra dims inserted at one position, so a ``[4, 20, 1]`` rollout of an env
whose action spec is ``[4, 1]`` is "in" the spec (the time dim sits between batch and event dims).
"""
from .base import Spec
from .composite import Composite
from .continuous import Bounded, Unbounded
from .discrete import Binary, Categorical, MultiCategorical, MultiOneHot, OneHot

__all__ = [
    "Spec",
    "Unbounded",
    "Bounded",
    "Categorical",
    "OneHot",
    "Binary",
    "MultiCategorical",
    "MultiOneHot",
    "Composite",
]
