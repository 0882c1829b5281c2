"""Renameable tensordict keys, shared by the losses and the value estimators.

A class lists the entries it reads and writes in ``default_keys`` (*name -> tensordict key*, in
the shared vocabulary: ``"reward"``, ``"done"``, ``"state_value"`` ...). Each instance keeps its own
copy: ``obj.set_keys(name=new_key)`` renames an entry, ``obj.tensor_keys.name`` reads it.

Both :class:`~rlbench.objectives.common.LossModule` and
:class:`~rlbench.objectives.value.ValueEstimatorBase` take :class:`KeysMixin`; this module imports
neither of them, so the two can import it without importing each other.
"""
from __future__ import annotations

from typing import ClassVar, Iterator

from tensordict.utils import NestedKey

__all__ = ["KeyView", "KeysMixin", "check_key", "keys_list"]


class KeyView:
    """Read-only attribute view of an object's key mapping (``loss.tensor_keys.reward``).

    Example:
        >>> keys = KeyView({"reward": "reward", "value": "state_value"}, "MyLoss")
        >>> keys.value
        'state_value'
        >>> sorted(keys)
        ['reward', 'value']
    """

    __slots__ = ("_keys", "_owner")

    def __init__(self, keys: dict, owner: str):
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_owner", owner)

    def __getattr__(self, name: str) -> NestedKey:
        try:
            return self._keys[name]
        except KeyError:
            raise AttributeError(
                f"{self._owner} has no key named {name!r}; its keys are {sorted(self._keys)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError(f"use {self._owner}.set_keys({name}=...) to rename a key")

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._keys.items())
        return f"{self._owner}.tensor_keys({inner})"


def check_key(name: str, key) -> NestedKey:
    """``key`` if it is a tensordict key (a str or a non-empty tuple of str), else a ``TypeError`` naming ``name``.

    Example:
        >>> check_key("reward", ("next", "rew"))
        ('next', 'rew')
    """
    if isinstance(key, str) or (isinstance(key, tuple) and key and all(isinstance(k, str) for k in key)):
        return key
    raise TypeError(f"set_keys: key {name!r} must be a str or a tuple of str (a tensordict key), got {key!r}")


def keys_list(td) -> str:
    """The leaf keys of a TensorDict as an error message shows them: ``['action', ('next', 'reward')]``.

    (No list of ``str(key)``: its quotes would be escaped again in a ``KeyError``'s message.)

    Example:
        >>> from tensordict import TensorDict
        >>> keys_list(TensorDict({"action": 0, "next": {"reward": 1.0}}))
        "['action', ('next', 'reward')]"
    """
    keys = sorted(td.keys(True, True), key=lambda k: (isinstance(k, tuple), str(k)))
    return "[" + ", ".join(repr(k) for k in keys) + "]"


class KeysMixin:
    """``default_keys`` / ``set_keys`` / ``tensor_keys`` for losses and value estimators.

    A class using it sets ``default_keys`` and calls ``self._init_keys()`` in ``__init__``; it may
    override ``_keys_changed(changed)`` to pass renames on (a loss forwards them to its estimator).

    Example:
        >>> class Reader(KeysMixin):
        ...     default_keys = {"reward": "reward"}
        ...     def __init__(self):
        ...         self._init_keys()
        >>> Reader().set_keys(reward="rew").tensor_keys.reward
        'rew'
    """

    default_keys: ClassVar[dict] = {}

    def _init_keys(self) -> None:
        self._tensor_keys = dict(self.default_keys)

    @property
    def tensor_keys(self) -> KeyView:
        """The keys this object reads and writes, as attributes (``.tensor_keys.reward``)."""
        return KeyView(self._tensor_keys, self._key_owner())

    def set_keys(self, **kwargs: NestedKey):
        """Renames the entries this object reads or writes; unknown names raise a ``ValueError``.

        Returns ``self`` so calls chain.
        """
        unknown = sorted(set(kwargs) - set(self._tensor_keys))
        if unknown:
            raise ValueError(
                f"{self._key_owner()}.set_keys: unknown key name(s) {unknown}; "
                f"expected some of {sorted(self._tensor_keys)}"
            )
        for name, key in kwargs.items():
            self._tensor_keys[name] = check_key(name, key)
        self._keys_changed(kwargs)
        return self

    def _key_owner(self) -> str:
        """The name errors give this object (an ``nn.Module`` subclass shows its ``_get_name()``)."""
        get_name = getattr(self, "_get_name", None)
        return get_name() if callable(get_name) else type(self).__name__

    def _keys_changed(self, changed: dict) -> None:  # hook for subclasses
        pass
