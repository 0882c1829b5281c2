"""Samplers: which stored items a batch reads (see :mod:`.base` for the contract)."""
from .base import Sampler
from .prioritized import PrioritizedSampler
from .prioritized_slice import PrioritizedSliceSampler
from .random import RandomSampler, SamplerWithoutReplacement
from .slice import SliceSampler, SliceSamplerWithoutReplacement

__all__ = ["Sampler", "RandomSampler", "SamplerWithoutReplacement", "PrioritizedSampler", "PrioritizedSliceSampler",
           "SliceSampler", "SliceSamplerWithoutReplacement"]
