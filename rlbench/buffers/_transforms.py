"""The transforms a replay buffer applies to every sampled batch, in order."""
from __future__ import annotations

from typing import Callable


def check_transform(transform) -> Callable:
    if not callable(transform):
        raise TypeError(f"sample transforms must be callables (batch -> batch), e.g. an rlbench.envs.transforms "
                        f"transform; got {type(transform).__name__}")
    return transform


class TransformList:
    """Callables applied in order to a sampled batch: ``batch = t(batch)`` for each ``t``.

    What ``ReplayBuffer.transform`` holds when the buffer was given a list of transforms, or after
    :meth:`ReplayBuffer.append_transform` / :meth:`ReplayBuffer.insert_transform`. Supports ``len``,
    indexing, iteration, ``append`` and ``insert``.

    Example:
        >>> t = TransformList([lambda x: x + 1, lambda x: x * 10])
        >>> t.append(lambda x: -x)
        >>> t(1), len(t)
        (-20, 3)
    """

    def __init__(self, transforms=()):
        self.transforms = [check_transform(t) for t in transforms]

    def __call__(self, batch):
        for transform in self.transforms:
            batch = transform(batch)
        return batch

    def append(self, transform) -> None:
        self.transforms.append(check_transform(transform))

    def insert(self, index: int, transform) -> None:
        self.transforms.insert(index, check_transform(transform))

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, index):
        return self.transforms[index]

    def __iter__(self):
        return iter(self.transforms)

    def __repr__(self) -> str:
        return f"TransformList({self.transforms!r})"
