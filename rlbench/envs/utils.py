"""``step_mdp`` and ``check_env_specs``: the two helpers every env user needs beside the env.

Also the two small TensorDict helpers that batched envs and collectors share to move a TensorDict
through shared memory leaf by leaf: :func:`tensor_leaves` and :func:`td_from_leaves`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase

# TensorDict's unchecked constructor (private; the public one re-validates every entry). None when
# a tensordict release drops it: step_mdp then takes its general path.
_new_td = getattr(TensorDict, "_new_unsafe", None)

__all__ = ["step_mdp", "check_env_specs", "SpecMismatch", "SpecCheckError", "tensor_leaves", "td_from_leaves"]


class _KeyError(KeyError):
    """A ``KeyError`` whose message prints as written (``KeyError`` would show its repr, in quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _EnvOutputError(ValueError):
    """``_reset``/``_step`` returned something that is not a TensorDict of the env's batch size."""

    def __init__(self, message: str, where: str, expected: str, got: str, hint: str):
        super().__init__(message)
        self.where, self.expected, self.got, self.hint = where, expected, got, hint


class _DoneFlagError(TypeError):
    """``_reset``/``_step`` returned done flags that are not bool, so ``done`` cannot be derived from them."""

    def __init__(self, message: str, where: str, key: str, dtype: torch.dtype, hint: str):
        super().__init__(message)
        self.where, self.key, self.dtype, self.hint = where, key, dtype, hint


def tensor_leaves(td: TensorDictBase) -> list:
    """``[(key tuple, tensor), ...]`` of every tensor leaf of ``td``, nested ones included.

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"a": torch.zeros(2), "n": {"b": torch.ones(2, 3)}}, [2])
        >>> [(key, tuple(value.shape)) for key, value in tensor_leaves(td)]
        [(('a',), (2,)), (('n', 'b'), (2, 3))]
    """
    out = []
    for key in td.keys(True, True):
        key = key if isinstance(key, tuple) else (key,)
        out.append((key, td.get(key)))
    return out


def td_from_leaves(pairs, batch_size, device, copy: bool) -> TensorDictBase:
    """A TensorDict of ``[(key tuple, tensor), ...]`` pairs (the inverse of :func:`tensor_leaves`).

    Args:
        pairs: ``(key tuple, tensor)`` pairs; nested keys make nested TensorDicts.
        batch_size: the batch size of the result (every tensor's leading dims).
        device: the device of the result.
        copy: copy each tensor to ``device`` (a fresh tensor even when it is there already), so the
            result does not share memory with ``pairs`` (e.g. shared-memory buffers that the next step
            overwrites); else the tensors are used as they are.

    Example:
        >>> pairs = [(("a",), torch.zeros(2)), (("n", "b"), torch.ones(2, 3))]
        >>> td = td_from_leaves(pairs, [2], "cpu", copy=True)
        >>> td["n", "b"].shape, td["a"].data_ptr() == pairs[0][1].data_ptr()
        (torch.Size([2, 3]), False)
    """
    data = {k: (v.to(device, copy=True) if copy else v) for k, v in pairs}
    if _new_td is not None and all(len(k) == 1 for k in data):  # flat: skip the constructor's checks
        return _new_td({k[0]: v for k, v in data.items()}, batch_size=batch_size, device=device)
    td = TensorDict({}, batch_size=batch_size, device=device)
    for k, v in data.items():
        td.set(k, v)
    return td


def step_mdp(
    td: TensorDictBase,
    action_key: str = "action",
    reward_key: str = "reward",
    keep_other: bool = True,
    exclude_action: bool = True,
    exclude_reward: bool = True,
) -> TensorDictBase:
    """Move ``td["next"]`` to the root for the following step.

    The result holds the next observation, done flags and state keys; with ``keep_other`` it also
    keeps root keys that ``"next"`` does not overwrite (e.g. a recurrent policy's hidden state).
    The action and reward are dropped unless ``exclude_action`` / ``exclude_reward`` are False.
    The result is a new TensorDict sharing its tensors with ``td`` (nothing is copied).

    Args:
        td: a TensorDict that went through ``env.step`` (it has a ``"next"`` entry).
        action_key: the key of the action (dropped unless ``exclude_action`` is False).
        reward_key: the key of the reward (dropped unless ``exclude_reward`` is False).
        keep_other: keep the root keys that ``"next"`` does not hold.
        exclude_action: drop the action.
        exclude_reward: drop the reward.

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"observation": torch.zeros(3), "action": torch.ones(1), "hidden": torch.ones(2),
        ...                  "next": {"observation": torch.ones(3), "reward": torch.ones(1)}}, [])
        >>> sorted(step_mdp(td).keys())
        ['hidden', 'observation']
        >>> sorted(step_mdp(td, keep_other=False, exclude_reward=False).keys())
        ['observation', 'reward']
    """
    nxt = td.get("next", None)
    if nxt is None:
        raise _KeyError(
            f"step_mdp: the TensorDict has no 'next' entry (found keys {sorted(map(str, td.keys()))}); "
            f"call env.step(td) first"
        )
    if type(nxt) is TensorDict and _new_td is not None and keep_other and not isinstance(action_key, tuple):
        # Fast path (runs every step of a rollout): gather the entries in a dict and build the result
        # once, unchecked (every entry already lives in a TensorDict of this batch size).
        # Nested TensorDicts get fresh containers (copy()), so a later in-place set of a nested key
        # on the root (a partial reset) cannot overwrite the final observation under td["next"].
        data = {k: (v.copy() if isinstance(v, TensorDictBase) else v) for k, v in nxt.items()}
        if exclude_reward:
            data.pop(reward_key, None)
        for key, value in td.items():
            if key in data or key == "next" or key == "_reset":
                continue
            if (exclude_action and key == action_key) or (exclude_reward and key == reward_key):
                continue
            data[key] = value
        return _new_td(data, batch_size=nxt.batch_size, device=nxt.device, nested=False)
    # copy() gives fresh nested containers; exclude() would share them with td["next"], and a later
    # in-place set of a nested key on the root (a partial reset) would overwrite the final observation
    out = nxt.copy()
    if exclude_reward and reward_key in out.keys():
        del out[reward_key]
    if keep_other:
        nxt_keys = nxt.keys()
        for key, value in td.items():
            if key == "next" or key == "_reset" or key in nxt_keys:
                continue
            if (exclude_action and key == action_key) or (exclude_reward and key == reward_key):
                continue
            out.set(key, value)
        if exclude_action and isinstance(action_key, tuple) and action_key in out.keys(True):
            out = out.exclude(action_key)
    elif not exclude_action:
        action = td.get(action_key, None)
        if action is not None:
            out.set(action_key, action)
    return out


@dataclass
class SpecMismatch:
    """One difference between what an env's specs promise and the data it produced.

    Attributes:
        key: the key in the step's TensorDict, as a tuple (``("next", "reward")``).
        problem: one of ``"missing"`` (declared, never produced), ``"unexpected"`` (produced, not
            declared), ``"shape"``, ``"dtype"``, ``"device"``, ``"values"`` (outside the spec's range,
            or ``done != terminated | truncated``), ``"type"`` (not a tensor) and ``"batch"``
            (``_reset``/``_step`` returned a TensorDict whose batch size is not the env's).
        expected: what the specs promise.
        got: what the env produced.
        hint: what to change.
    """

    key: tuple
    problem: str
    expected: str
    got: str
    hint: str

    def __str__(self) -> str:
        key = self.key[0] if len(self.key) == 1 else self.key
        hint = self.hint[:1].upper() + self.hint[1:]
        return f"key {key!r}: {self.problem} — expected {self.expected}, got {self.got}. {hint}"


class SpecCheckError(AssertionError):
    """Raised by :func:`check_env_specs`; ``.mismatches`` lists every difference found."""

    def __init__(self, env_name: str, mismatches: list[SpecMismatch]):
        self.mismatches = mismatches
        lines = "\n".join(f"  - {m}" for m in mismatches)
        super().__init__(
            f"check_env_specs({env_name}) found {len(mismatches)} mismatch(es) between the env's specs and "
            f"the data it produced:\n{lines}"
        )


def _spec_attr(env, key: tuple) -> str:
    """The env attribute whose spec describes ``key`` (relative to the root or to ``"next"``)."""
    if key == (env.action_key,) or key == _as_tuple(env.action_key):
        return "action_spec"
    if key == _as_tuple(env.reward_key):
        return "reward_spec"
    if key in env.done_spec:
        return "done_spec"
    if key in env.observation_spec:
        return "observation_spec"
    if key in env.state_spec:
        return "state_spec"
    return "observation_spec"


def _as_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _setter(env, attr: str, key: tuple) -> str:
    """How the user writes that spec: ``env.observation_spec['x']`` or ``env.reward_spec``."""
    if attr in ("action_spec", "reward_spec"):
        return f"env.{attr}"
    return f"env.{attr}[{(key[0] if len(key) == 1 else key)!r}]"


def _dtype_arg(dtype) -> str:
    return "" if dtype == torch.float32 else f", dtype={dtype}"


def _compare(env, full: tuple, rel: tuple, spec, value, where: str) -> list[SpecMismatch]:
    attr = _spec_attr(env, rel)
    setter = _setter(env, attr, rel)
    if not isinstance(value, torch.Tensor):
        return [SpecMismatch(
            full, "type", f"a tensor ({spec!r})", type(value).__name__,
            f"make {where} return a tensor under this key, or describe it with a Composite spec",
        )]
    found = []
    if value.shape != spec.shape:
        if attr in ("reward_spec", "done_spec"):
            hint = (
                f"rewards and done flags are shaped [*batch_size, 1] = {(*env.batch_size, 1)}; "
                f"reshape it in {where} (e.g. .unsqueeze(-1))"
            )
        else:
            hint = (
                f"make {where} return shape {tuple(spec.shape)}, or declare what it returns, e.g. "
                f"{setter} = Unbounded(shape={tuple(value.shape)}{_dtype_arg(value.dtype)})"
            )
        found.append(SpecMismatch(full, "shape", f"shape {tuple(spec.shape)}", f"shape {tuple(value.shape)}", hint))
    if value.dtype != spec.dtype:
        found.append(SpecMismatch(
            full, "dtype", str(spec.dtype), str(value.dtype),
            f"cast it in {where} (e.g. .to({spec.dtype})) or declare dtype={value.dtype} in {setter}",
        ))
    if value.device != spec.device:
        found.append(SpecMismatch(
            full, "device", str(spec.device), str(value.device),
            f"move the data to {spec.device} in {where} or build the spec with device={value.device}",
        ))
    if not found:
        why = spec.mismatch(value)
        if why is not None:
            found.append(SpecMismatch(
                full, "values", repr(spec), why,
                f"{where} produced values outside {setter}; fix the env or widen the spec",
            ))
    return found


def _check_keys(env, data, spec, prefix: tuple, where: str) -> list[SpecMismatch]:
    """Compare every key of ``spec`` with ``data`` (one step) and flag undeclared keys of ``data``."""
    found = []
    data_keys = set(data.keys(True, True))
    for key in spec.keys(True, True):
        rel = _as_tuple(key)
        full = prefix + rel
        if key not in data_keys:
            found.append(SpecMismatch(
                full, "missing", repr(spec[key]), "no such key in the data",
                f"make {where} return it, or remove it from {_setter(env, _spec_attr(env, rel), rel).split('[')[0]}",
            ))
            continue
        found.extend(_compare(env, full, rel, spec[key], data.get(key), where))
    declared = set(spec.keys(True, True))
    for key in data.keys(True, True):
        rel = _as_tuple(key)
        if rel[0] == "next" or rel[-1] == "_reset" or key in declared:
            continue
        value = data.get(key)
        if isinstance(value, torch.Tensor):
            got = f"shape {tuple(value.shape)}, dtype {value.dtype}"
            example = f"Unbounded(shape={tuple(value.shape)}{_dtype_arg(value.dtype)})"
        else:
            got, example = type(value).__name__, "Unbounded(shape=...)"
        found.append(SpecMismatch(
            prefix + rel, "unexpected", "no such key (no spec declares it)", got,
            f"declare it, e.g. env.observation_spec[{(rel[0] if len(rel) == 1 else rel)!r}] = {example}, "
            f"or stop returning it from {where}",
        ))
    return found


def _check_done_consistency(data, prefix: tuple) -> list[SpecMismatch]:
    done, term, trunc = data.get("done", None), data.get("terminated", None), data.get("truncated", None)
    if not all(isinstance(v, torch.Tensor) and v.dtype == torch.bool for v in (done, term, trunc)):
        return []
    if done.shape != term.shape or done.shape != trunc.shape or torch.equal(done, term | trunc):
        return []
    return [SpecMismatch(
        prefix + ("done",), "values", "done == terminated | truncated",
        f"done={done.reshape(-1).tolist()}, terminated={term.reshape(-1).tolist()}, "
        f"truncated={trunc.reshape(-1).tolist()}",
        "return consistent flags from _step (or return only terminated/truncated and let EnvBase derive done)",
    )]


def check_env_specs(env, steps: int = 3, seed: int | None = None, raise_error: bool = True) -> list[SpecMismatch]:
    """Run a few random steps and compare every key with the env's specs.

    The reset and each step are checked on their own (so a wrong shape is reported as such, not as a
    failure to stack a rollout), then a short rollout must come out shaped ``[*batch_size, steps]``.
    Returns the list of mismatches (empty when all is well). With ``raise_error`` (the default) a
    non-empty list raises :class:`SpecCheckError`, whose message names each key, what was expected,
    what was found and what to change.

    Args:
        env: the env to check.
        steps: how many random steps to take.
        seed: passed to ``env.set_seed`` first when given.
        raise_error: raise :class:`SpecCheckError` instead of returning a non-empty list.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> check_env_specs(CountingEnv(batch_size=[2]))
        []
    """
    if seed is not None:
        env.set_seed(seed)
    name = type(env).__name__
    found: list[SpecMismatch] = []
    root_spec = env.observation_spec.clone().update(env.state_spec).update(env.done_spec)
    root_spec[env.action_key] = env.action_spec
    next_spec = env.output_spec
    try:
        td = env.reset()
        found.extend(_check_keys(env, td, root_spec.exclude(env.action_key), (), "_reset"))
        for _ in range(steps):
            td = env.rand_action(td)
            td, root = env.step_and_maybe_reset(td)
            found.extend(_check_keys(env, td.exclude("next"), root_spec, (), "reset/_step"))
            found.extend(_check_keys(env, td.get("next"), next_spec, ("next",), "_step"))
            found.extend(_check_done_consistency(td.get("next"), ("next",)))
            td = root
        if not found:
            data = env.rollout(steps, break_when_any_done=False)
            lead = (*env.batch_size, steps)
            if tuple(data.batch_size) != lead:
                found.append(SpecMismatch(
                    ("<rollout>",), "batch", f"batch size {lead}", str(tuple(data.batch_size)),
                    "env.rollout must return [*batch_size, T]; check the env's batch_size",
                ))
    except _EnvOutputError as err:
        found.append(SpecMismatch((f"<{err.where}>",), "batch", err.expected, err.got, err.hint))
    except _DoneFlagError as err:  # done = terminated | truncated needs bool flags
        key = (err.key,) if err.where == "_reset" else ("next", err.key)
        found.append(SpecMismatch(key, "dtype", str(torch.bool), str(err.dtype), err.hint))
    # one entry per key and problem, in the order first seen
    unique: dict = {}
    for m in found:
        unique.setdefault((m.key, m.problem), m)
    found = list(unique.values())
    if found and raise_error:
        raise SpecCheckError(name, found)
    return found
