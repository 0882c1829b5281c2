"""The checklist every rlbench loss passes, for your own losses too, and real data to run it on.

:func:`check_loss_contract` runs a loss on one batch and checks, raising an ``AssertionError``
that names the loss and the entry at fault:

1. the output holds only ``loss_*`` scalars (at least one with a gradient) and detached, finite
   scalar diagnostics;
2. ``backward`` of the summed losses reaches the trainable parameters and never the target
   parameters (buffers); an optimizer step over ``loss.parameters()`` leaves every target buffer
   unchanged;
3. ``set_keys`` renames are read: renaming a key in the loss *and* in the data gives the same
   output, and changing the data under the new key changes a ``loss_*`` entry;
4. ``set_keys`` with an unknown name raises a ``ValueError`` naming it;
5. ``state_dict`` round trip: a perturbed copy that loads the original's state gives the same output;
6. bad batches are refused by name, or do not matter to the loss (its output is unchanged), never
   turned silently into another number: an empty batch raises a ``ValueError`` saying "empty
   batch"; without the action, a ``KeyError`` names the action key and where the batch should come
   from (a rollout or a collector); without an entry of ``"next"`` that the root also has (the next
   observation), a ``KeyError`` names ``('next', key)``; a reward shaped ``[*B, 3]``, a
   ``ValueError`` giving ``[*B, 1]``; a NaN reward, a ``ValueError`` naming it "non-finite"; integer
   actions given as fractional floats, an error naming the dtype. The readers of
   :class:`~rlbench.objectives.LossModule` (``stored_action``, ``reward_and_terminated``,
   ``advantage``, ``network_output``...) give these errors; a loss that reads around them fails here.

It works on copies: neither the loss nor the batch given is changed, and the global RNG is left
as it was. Losses that sample (SAC's reparameterised actions, TD3's smoothing noise, REDQ's
subset) are compared under the same seed.

:func:`rollout_batch` collects real transitions from a gymnasium env with
:class:`~rlbench.collectors.Collector`; :func:`replay_sample` also passes them through a
:class:`~rlbench.buffers.ReplayBuffer`; :func:`check_loss_runs_on` moves a loss and its data to a
device (CUDA tests).
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey

__all__ = ["check_loss_contract", "check_loss_runs_on", "rollout_batch", "replay_sample"]


def check_loss_contract(loss: torch.nn.Module, td: TensorDictBase, *, rename: Mapping[str, NestedKey] | None = None,
                        seed: int = 0) -> TensorDictBase:
    """Runs the loss checklist (module docstring) on ``loss`` and the batch ``td``; returns ``loss(td)``.

    Args:
        loss: a :class:`~rlbench.objectives.LossModule` (anything with ``tensor_keys``/``set_keys``
            that returns ``loss_*`` entries).
        td: a batch the loss accepts.
        rename: ``{key name: new key}`` for keys the data carries, e.g. ``{"reward": "rew"}``
            (the name as in ``loss.tensor_keys``; the entry is found at the root or under ``"next"``).
        seed: seed set before every call, so that sampling losses are comparable.

    Returns:
        The loss's output on ``td`` (computed on a copy of the loss under ``seed``).

    Raises:
        AssertionError: a check failed; the message names the loss and what was wrong.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.objectives import DQNLoss
        >>> net = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        >>> td = TensorDict({"observation": torch.randn(8, 4), "action": torch.randint(2, (8,)),
        ...     "next": {"observation": torch.randn(8, 4), "reward": torch.randn(8, 1),
        ...              "terminated": torch.zeros(8, 1, dtype=torch.bool)}}, batch_size=[8])
        >>> out = check_loss_contract(DQNLoss(net, action_space="categorical"), td, rename={"reward": "rew"})
        >>> sorted(out.keys())
        ['loss_value', 'q_value', 'td_error']
    """
    with torch.random.fork_rng(devices=[]):
        return _check(copy.deepcopy(loss), td, dict(rename or {}), seed)


def _check(loss, td: TensorDictBase, rename: dict, seed: int) -> TensorDictBase:
    name = loss._get_name() if hasattr(loss, "_get_name") else type(loss).__name__
    torch.manual_seed(seed)
    first = loss(td.clone())

    # 1. only loss_* scalars and detached scalar diagnostics
    losses = _losses(first)
    assert losses, f"{name}: no loss_* entry in the output {sorted(first.keys())}"
    for k, v in first.items():
        assert isinstance(k, str) and isinstance(v, torch.Tensor), f"{name}: entry {k!r} is not a tensor"
        assert v.ndim == 0, f"{name}: entry {k!r} should be a scalar, has shape {tuple(v.shape)}"
        assert torch.isfinite(v), f"{name}: entry {k!r} is not finite: {v}"
        if not k.startswith("loss_"):
            assert not v.requires_grad, f"{name}: diagnostic {k!r} must be detached"
    assert any(v.requires_grad for v in losses.values()), f"{name}: no loss_* entry carries a gradient"

    # 2. gradients reach trainable parameters only; targets stay put through an optimizer step
    targets = {n: b.clone() for n, b in loss.named_buffers() if "target" in n}
    for n, b in loss.named_buffers():
        assert not b.requires_grad, f"{name}: buffer {n!r} requires grad"
    loss.zero_grad(set_to_none=True)
    sum(v for v in losses.values()).backward()
    with_grad = [n for n, p in loss.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert with_grad, f"{name}: backward reached no parameter"
    torch.optim.SGD(loss.parameters(), lr=0.1).step()
    loss.zero_grad(set_to_none=True)
    buffers = dict(loss.named_buffers())
    for n, before in targets.items():
        torch.testing.assert_close(buffers[n], before, rtol=0, atol=0, equal_nan=True,
                                   msg=lambda m: f"{name}: target buffer {n!r} moved in an optimizer step: {m}")
    out = _call(loss, td, seed)  # parameters moved: the reference output from here on

    # 3. renamed keys are the ones read
    for key_name, new_key in rename.items():
        old_key = getattr(loss.tensor_keys, key_name)
        renamed_loss = copy.deepcopy(loss).set_keys(**{key_name: new_key})
        renamed_td = _rename_in_data(td, old_key, new_key)
        what = f"{name}.set_keys({key_name}={new_key!r})"
        try:
            renamed_out = _call(renamed_loss, renamed_td, seed)
        except KeyError as err:
            raise AssertionError(f"{what}: the loss fails on data whose {old_key!r} entry was renamed {new_key!r} "
                                 f"(does it read the key through tensor_keys?): {err}") from err
        _assert_same(renamed_out, out, what)
        changed = _call(renamed_loss, _perturb_in_data(renamed_td, new_key), seed)
        assert any(not torch.allclose(changed[k], v) for k, v in _losses(out).items()), (
            f"{name}: changing the data under the renamed key {new_key!r} did not change any loss_* entry: "
            f"the renamed key is not read")

    # 4. unknown key names raise
    try:
        copy.deepcopy(loss).set_keys(no_such_key="x")
    except ValueError as err:
        assert "no_such_key" in str(err), f"{name}: set_keys(no_such_key=...) raised without naming it: {err}"
    else:
        raise AssertionError(f"{name}: set_keys(no_such_key=...) did not raise a ValueError")

    # 5. state_dict round trip
    twin = copy.deepcopy(loss)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(torch.randn_like(p))
        for _, b in twin.named_buffers():
            if b.is_floating_point():
                b.add_(1.0)
    twin.load_state_dict(loss.state_dict())
    _assert_same(_call(twin, td, seed), out, f"{name}: after a state_dict round trip")

    # 6. bad batches: refused by name, or irrelevant to the loss -- never another number in silence
    _check_bad_batches(loss, td, out, name, seed)
    return first


def _check_bad_batches(loss, td: TensorDictBase, out: TensorDictBase, name: str, seed: int) -> None:
    keys = dict(getattr(loss, "_tensor_keys", {}))
    nxt = td.get("next", None)
    nxt = nxt if isinstance(nxt, TensorDictBase) else None
    if td.batch_dims:
        _expect_refusal(loss, td[(slice(0, 0),) * td.batch_dims], out, seed, f"{name}: an empty batch", ValueError,
                        ["empty batch"], allow_unchanged=False)
    action_key = keys.get("action")
    if action_key is not None and action_key in td.keys(True, True):
        _expect_refusal(loss, td.exclude(action_key), out, seed, f"{name}: a batch without {action_key!r}", KeyError,
                        [repr(action_key), "rollout"])
        action = td.get(action_key)
        if not action.is_floating_point() and action.dtype != torch.bool:
            bad = td.clone()
            bad.set(action_key, action.to(torch.get_default_dtype()) + 0.5)
            _expect_refusal(loss, bad, out, seed, f"{name}: {action_key!r} as fractional floats", Exception,
                            [str(torch.get_default_dtype())])
    if nxt is None:
        return
    skip = {keys.get(k) for k in ("reward", "done", "terminated")}
    for key in nxt.keys(True, True):
        if key in skip or key not in td.keys(True, True):
            continue
        shown = repr(("next", *key) if isinstance(key, tuple) else ("next", key))
        _expect_refusal(loss, td.exclude(("next", key) if isinstance(key, str) else ("next", *key)), out, seed,
                        f"{name}: a batch without {shown}", KeyError, [shown])
    reward_key = keys.get("reward")
    if reward_key is not None and reward_key in nxt.keys(True, True):
        reward = nxt.get(reward_key)
        if reward.is_floating_point():
            wide = td.clone()
            wide.get("next").set(reward_key, torch.zeros(*nxt.batch_size, 3, dtype=reward.dtype))
            _expect_refusal(loss, wide, out, seed, f"{name}: a reward shaped [*B, 3]", ValueError, ["[*B, 1]"])
            nan = td.clone()
            r = nan.get("next").get(reward_key).clone()
            r.view(-1)[0] = float("nan")
            nan.get("next").set(reward_key, r)
            _expect_refusal(loss, nan, out, seed, f"{name}: a NaN reward", ValueError, ["non-finite"])


def _expect_refusal(loss, bad: TensorDictBase, out: TensorDictBase, seed: int, what: str, error: type,
                    words: list, *, allow_unchanged: bool = True) -> None:
    """``loss`` on ``bad`` raises ``error`` with every one of ``words`` in its message, or gives ``out`` unchanged."""
    try:
        got = _call(loss, bad, seed)
    except error as err:
        msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        missing = [w for w in words if w not in msg]
        assert not missing, f"{what} raised {type(err).__name__} without naming {missing}: {msg}"
        return
    except Exception as err:  # noqa: BLE001 - any other error is the finding
        raise AssertionError(f"{what} raised {type(err).__name__} instead of a {error.__name__} naming {words}: "
                             f"{err}") from err
    assert allow_unchanged and _same(got, out), (
        f"{what} gave a loss without an error: it should raise a {error.__name__} naming {words} "
        f"(read the batch through LossModule's readers: stored_action, reward_and_terminated, network_output...)")


def check_loss_runs_on(loss: torch.nn.Module, td: TensorDictBase, device) -> TensorDictBase:
    """A copy of ``loss`` moved to ``device`` runs on ``td`` moved there: outputs on the device, ``backward`` works.

    Returns:
        The output (on ``device``).

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.objectives import A2CLoss
        >>> from rlbench.testing import categorical_actor
        >>> actor = categorical_actor(3, 2)
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"] = torch.randn(8, 1)
        >>> check_loss_runs_on(A2CLoss(actor), td, "cpu")["loss_objective"].device
        device(type='cpu')
    """
    loss = copy.deepcopy(loss).to(device)
    out = loss(td.clone().to(device))
    name = loss._get_name() if hasattr(loss, "_get_name") else type(loss).__name__
    for k, v in out.items():
        assert v.device.type == torch.device(device).type, f"{name}: {k!r} is on {v.device}, not {device}"
    sum(v for v in _losses(out).values()).backward()
    return out


def rollout_batch(env_name: str, policy, frames: int = 32, seed: int = 0) -> TensorDictBase:
    """One batch of ``frames`` transitions from the gymnasium env ``env_name``, as a collector gives it.

    Collected by :class:`~rlbench.collectors.Collector` (``policy=None``: random actions).

    Example:
        >>> batch = rollout_batch("CartPole-v1", None, frames=8)
        >>> batch.batch_size, batch["next", "reward"].shape
        (torch.Size([8]), torch.Size([8, 1]))
    """
    from ..collectors import Collector
    from ..envs import GymEnv

    env = GymEnv(env_name)
    try:
        collector = Collector(env, policy, frames_per_batch=frames, total_frames=frames, seed=seed)
        batch = next(iter(collector))
        if hasattr(collector, "shutdown"):
            collector.shutdown()
    finally:
        env.close()
    return batch.exclude("collector")


def replay_sample(env_name: str, policy, frames: int = 64, batch_size: int = 32, seed: int = 0) -> TensorDictBase:
    """A batch as an off-policy loop sees it: ``frames`` transitions collected, stored in a replay buffer, sampled back.

    Example:
        >>> replay_sample("Pendulum-v1", None, frames=16, batch_size=4).batch_size
        torch.Size([4])
    """
    from ..buffers import LazyTensorStorage, ReplayBuffer

    buffer = ReplayBuffer(storage=LazyTensorStorage(frames))
    buffer.extend(rollout_batch(env_name, policy, frames=frames, seed=seed))
    torch.manual_seed(seed)
    return buffer.sample(batch_size)


# ----------------------------------------------------------------------------- checklist helpers
def _call(loss, td: TensorDictBase, seed: int) -> TensorDictBase:
    """``loss`` on a clone of ``td`` under ``seed``, on a copy of the loss.

    Losses with state that a call updates (KL-PEN's beta, TD3's update counter) thus give comparable
    outputs call after call.
    """
    torch.manual_seed(seed)
    return copy.deepcopy(loss)(td.clone())


def _losses(out: TensorDictBase) -> dict:
    return {k: v for k, v in out.items() if k.startswith("loss_")}


def _same(a: TensorDictBase, b: TensorDictBase) -> bool:
    return sorted(a.keys()) == sorted(b.keys()) and all(
        torch.equal(a[k], b[k]) or bool(torch.allclose(a[k], b[k], equal_nan=False)) for k in a.keys())


def _assert_same(a: TensorDictBase, b: TensorDictBase, what: str) -> None:
    assert sorted(a.keys()) == sorted(b.keys()), f"{what}: output keys differ: {sorted(a.keys())} vs {sorted(b.keys())}"
    for k in a.keys():
        torch.testing.assert_close(a[k], b[k], msg=lambda m: f"{what}: entry {k!r} differs: {m}")


def _rename_in_data(td: TensorDictBase, old, new) -> TensorDictBase:
    """``td`` with the entry ``old`` moved to ``new``, at the root and/or under ``"next"``."""
    td = td.clone()
    found = False
    for sub in (td, td.get("next", None)):
        if isinstance(sub, TensorDictBase) and old in sub.keys(True, True):
            sub.rename_key_(old, new)
            found = True
    assert found, f"check_loss_contract: the data has no entry {old!r} to rename (root or under 'next')"
    return td


def _perturb_in_data(td: TensorDictBase, key) -> TensorDictBase:
    td = td.clone()
    for sub in (td, td.get("next", None)):
        if isinstance(sub, TensorDictBase) and key in sub.keys(True, True):
            x = sub.get(key)
            if x.is_floating_point():
                x = x * 2 + 1
            elif x.dtype == torch.bool:
                x = ~x
            else:  # integer actions: flip 0 <-> 1
                x = 1 - x
            sub.set(key, x)
    return td
