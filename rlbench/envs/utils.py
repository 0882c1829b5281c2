"""``step_mdp`` and ``check_env_specs``: the two helpers every env user needs beside the env."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase

__all__ = ["step_mdp", "check_env_specs", "SpecMismatch", "SpecCheckError"]


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

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"observation": torch.zeros(3), "action": torch.ones(1),
        ...                  "next": {"observation": torch.ones(3), "reward": torch.ones(1)}}, [])
        >>> sorted(step_mdp(td).keys())
        ['observation']
    """
    nxt = td.get("next")
    out = nxt.copy()
    if exclude_reward and reward_key in out.keys():
        del out[reward_key]
    if keep_other:
        skip = {"next", "_reset"}
        if exclude_action:
            skip.add(action_key)
        if not exclude_reward:
            skip.discard(reward_key)
        out_keys = out.keys()
        for key in td.keys():
            if key not in skip and key not in out_keys:
                out.set(key, td.get(key))
    elif not exclude_action:
        out.set(action_key, td.get(action_key))
    return out


@dataclass
class SpecMismatch:
    """One difference between what an env's specs promise and the data it produced."""

    key: tuple
    problem: str  # "missing", "unexpected", "shape", "dtype", "device", "values", "batch"
    expected: str
    got: str
    hint: str

    def __str__(self) -> str:
        key = self.key[0] if len(self.key) == 1 else self.key
        return f"key {key!r}: {self.problem} — expected {self.expected}, got {self.got}. {self.hint}"


class SpecCheckError(AssertionError):
    """Raised by :func:`check_env_specs`; ``.mismatches`` lists every difference found."""

    def __init__(self, env_name: str, mismatches: list[SpecMismatch]):
        self.mismatches = mismatches
        lines = "\n".join(f"  - {m}" for m in mismatches)
        super().__init__(
            f"check_env_specs({env_name}) found {len(mismatches)} mismatch(es) between the env's specs and "
            f"the data it produced:\n{lines}"
        )


def _spec_attr(key: tuple) -> str:
    leaf = key[-1]
    if leaf == "reward":
        return "reward_spec"
    if leaf in ("done", "terminated", "truncated"):
        return "done_spec"
    if leaf == "action":
        return "action_spec"
    return "observation_spec"


def _compare(key, spec, value, lead: tuple, where: str) -> list[SpecMismatch]:
    attr = _spec_attr(key)
    name = key[-1] if len(key) == 1 else key
    expected_shape = (*lead, *spec.shape[len(lead) - 1:])
    found = []
    if tuple(value.shape) != expected_shape:
        found.append(SpecMismatch(
            key, "shape", f"shape {expected_shape}", f"shape {tuple(value.shape)}",
            f"{where} returned it with event shape {tuple(value.shape[len(lead):])}; either make the env return "
            f"{tuple(spec.shape[len(lead) - 1:])} or set the spec to match, e.g. "
            f"env.{attr}[{name!r}] = Unbounded(shape=(*batch_size, *{tuple(value.shape[len(lead):])}))"
            if attr == "observation_spec" else
            f"{where} returned it with event shape {tuple(value.shape[len(lead):])}; {attr} expects "
            f"{tuple(spec.shape[len(lead) - 1:])} (rewards and done flags are shaped [*batch_size, 1])",
        ))
    if value.dtype != spec.dtype:
        found.append(SpecMismatch(
            key, "dtype", str(spec.dtype), str(value.dtype),
            f"cast it in {where} (e.g. .to({spec.dtype})) or declare dtype={value.dtype} in env.{attr}",
        ))
    if value.device != spec.device:
        found.append(SpecMismatch(
            key, "device", str(spec.device), str(value.device),
            f"move the data to {spec.device} in {where} or build the spec with device={value.device}",
        ))
    if not found:
        why = spec.mismatch(value)
        if why is not None:
            found.append(SpecMismatch(key, "values", repr(spec), why, f"{where} produced values outside env.{attr}"))
    return found


def check_env_specs(env, steps: int = 3, seed: int | None = None, raise_error: bool = True) -> list[SpecMismatch]:
    """Run a short random rollout and compare every key with the env's specs.

    Returns the list of mismatches (empty when all is well). With ``raise_error`` (the default) a
    non-empty list raises :class:`SpecCheckError`, whose message names each key, what was expected,
    what was found and what to change.

    Example:
        >>> from rlbench.envs import CartPoleEnv
        >>> check_env_specs(CartPoleEnv())
        []
    """
    if seed is not None:
        env.set_seed(seed)
    data = env.rollout(steps, break_when_any_done=False)
    batch = tuple(env.batch_size)
    lead = (*batch, steps)
    found: list[SpecMismatch] = []
    if tuple(data.shape) != lead:
        found.append(SpecMismatch(
            ("<rollout>",), "batch", f"rollout shape {lead}", f"{tuple(data.shape)}",
            "the env's batch_size and the leading dims of the data it returns disagree",
        ))
        if raise_error:
            raise SpecCheckError(type(env).__name__, found)
        return found
    root_spec = env.observation_spec.clone().update(env.state_spec).update(env.done_spec)
    root_spec[env.action_key] = env.action_spec
    next_spec = env.output_spec
    for prefix, spec, where in (((), root_spec, "reset/_step"), (("next",), next_spec, "_step")):
        sub = data.get(prefix) if prefix else data
        for key in spec.keys(True, True):
            full = prefix + (key if isinstance(key, tuple) else (key,))
            if key not in sub.keys(True, True):
                found.append(SpecMismatch(
                    full, "missing", repr(spec[key]), "no such key in the data",
                    f"make {where} return it, or remove it from env.{_spec_attr(full)}",
                ))
                continue
            found.extend(_compare(full, spec[key], sub.get(key), lead, where))
        declared = set(spec.keys(True, True))
        for key in sub.keys(True, True):
            if key == "next" or (isinstance(key, tuple) and key[0] == "next") or key in declared:
                continue
            full = prefix + (key if isinstance(key, tuple) else (key,))
            found.append(SpecMismatch(
                full, "unexpected", "no such key (no spec describes it)", f"shape {tuple(sub.get(key).shape)}",
                f"add a spec for it, e.g. env.observation_spec[{key!r}] = Unbounded(shape=...)",
            ))
    if found and raise_error:
        raise SpecCheckError(type(env).__name__, found)
    return found
