"""Samplers: which stored items a batch reads (see :mod:`.base` for the contract)."""
from .base import Sampler
from .prioritized import PrioritizedSampler
from .random import RandomSampler, SamplerWithoutReplacement

__all__ = ["Sampler", "RandomSampler", "SamplerWithoutReplacement", "PrioritizedSampler"]
