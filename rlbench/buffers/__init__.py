"""Replay buffers: storages keep items, writers place them, samplers pick batches.

``ReplayBuffer(storage=LazyTensorStorage(100_000), sampler=RandomSampler(), batch_size=256)`` is
the everyday buffer; ``TensorDictReplayBuffer`` writes the sampled ``"index"`` into each batch;
``PrioritizedReplayBuffer(alpha=..., beta=...)`` samples by priority and returns importance weights.
Saved buffers load without unpickling anything unless asked to (:class:`UnsafeCheckpointError`).
``RayReplayBuffer`` serves one of these buffers from a Ray actor, shared across a cluster (the ``ray`` extra).
"""
from .ray import RayReplayBuffer
from .replay_buffer import (
                            EmptyBufferError,
                            PrioritizedReplayBuffer,
                            ReplayBuffer,
                            TensorDictPrioritizedReplayBuffer,
                            TensorDictReplayBuffer,
)
from .samplers import (
                            PrioritizedSampler,
                            PrioritizedSliceSampler,
                            RandomSampler,
                            Sampler,
                            SamplerWithoutReplacement,
                            SliceSampler,
                            SliceSamplerWithoutReplacement,
)
from .storages import (
                            LazyMemmapStorage,
                            LazyTensorStorage,
                            ListStorage,
                            Storage,
                            StorageMismatchError,
                            UnsafeCheckpointError,
                            UnsafeLoadError,
)
from .writers import RoundRobinWriter, TensorDictMaxValueWriter, Writer

__all__ = [
    "ReplayBuffer", "TensorDictReplayBuffer", "PrioritizedReplayBuffer", "TensorDictPrioritizedReplayBuffer",
    "EmptyBufferError", "RayReplayBuffer",
    "Sampler", "RandomSampler", "SamplerWithoutReplacement", "PrioritizedSampler", "PrioritizedSliceSampler",
    "SliceSampler", "SliceSamplerWithoutReplacement",
    "Storage", "ListStorage", "LazyTensorStorage", "LazyMemmapStorage", "StorageMismatchError", "UnsafeLoadError",
    "UnsafeCheckpointError",
    "Writer", "RoundRobinWriter", "TensorDictMaxValueWriter",
]
