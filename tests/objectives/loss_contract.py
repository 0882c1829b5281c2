"""The checklist every rlbench loss passes (``check_loss_contract``), and real data to run it on.

Import it from a test in this folder: ``from loss_contract import check_loss_contract, rollout_batch``.
``rollout_batch`` collects real transitions from a gymnasium env with ``rlbench.collectors.Collector``;
``replay_sample`` also passes them through an rlbench ``ReplayBuffer``; ``check_runs_on`` moves a
loss and its data to a device (CUDA tests).

``check_loss_contract(loss, td, rename={...})`` checks, on one batch:

1. the output holds only ``loss_*`` scalars (at least one with a gradient) and detached scalar
   diagnostics;
2. ``backward`` of the summed losses reaches the trainable parameters and never the target
   parameters; an optimizer step over ``loss.parameters()`` leaves every target buffer unchanged;
3. ``set_keys`` renames are read: renaming a key in the loss *and* in the data gives the same
   output, and changing the data under the new key changes the output;
4. ``set_keys`` with an unknown name raises ``ValueError`` naming it;
5. ``state_dict`` round trip: a perturbed copy that loads the original's state gives the same output.

Losses that sample (SAC's reparameterised actions, TD3's smoothing noise, REDQ's subset) are
compared under the same seed.
"""
from __future__ import annotations

import copy

import pytest
import torch
from tensordict import TensorDictBase


def _call(loss, td: TensorDictBase, seed: int) -> TensorDictBase:
    """``loss`` on a clone of ``td`` under ``seed``, on a copy of the loss: losses with state that a call
    updates (KL-PEN's beta, TD3's update counter) give comparable outputs call after call.
    """
    torch.manual_seed(seed)
    return copy.deepcopy(loss)(td.clone())


def _losses(out: TensorDictBase) -> dict:
    return {k: v for k, v in out.items() if k.startswith("loss_")}


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
    assert found, f"contract: the data has no entry {old!r} to rename (root or under 'next')"
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


def check_loss_contract(loss, td: TensorDictBase, *, rename: dict | None = None, seed: int = 0) -> TensorDictBase:
    """Runs the checklist above on ``loss`` and batch ``td``; returns the loss's output.

    Args:
        loss: a ``LossModule``.
        td: a batch the loss accepts (left unmodified: every call gets a clone).
        rename: ``{key name: new key}`` for keys the data carries (e.g. ``{"reward": "rew"}``).
        seed: seed set before every call, so sampling losses are comparable.
    """
    name = type(loss).__name__
    torch.manual_seed(seed)
    out = loss(td.clone())

    # 1. only loss_* scalars and detached scalar diagnostics
    losses = _losses(out)
    assert losses, f"{name}: no loss_* entry in the output {sorted(out.keys())}"
    for k, v in out.items():
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
    opt = torch.optim.SGD(loss.parameters(), lr=0.1)
    opt.step()
    loss.zero_grad(set_to_none=True)
    for n, before in targets.items():
        after = dict(loss.named_buffers())[n]
        torch.testing.assert_close(after, before, msg=lambda m: f"{name}: target buffer {n!r} moved: {m}")
    out = _call(loss, td, seed)  # parameters moved: recompute the reference output

    # 3. renamed keys are the ones read
    for key_name, new_key in (rename or {}).items():
        old_key = getattr(loss.tensor_keys, key_name)
        renamed_loss = copy.deepcopy(loss).set_keys(**{key_name: new_key})
        renamed_td = _rename_in_data(td, old_key, new_key)
        _assert_same(_call(renamed_loss, renamed_td, seed), out, f"{name}.set_keys({key_name}={new_key!r})")
        changed = _call(renamed_loss, _perturb_in_data(renamed_td, new_key), seed)
        assert any(not torch.allclose(changed[k], v) for k, v in _losses(out).items()), (
            f"{name}: changing the data under the renamed key {new_key!r} did not change any loss_* entry: "
            f"the renamed key is not read")

    # 4. unknown key names raise
    with pytest.raises(ValueError, match="no_such_key"):
        copy.deepcopy(loss).set_keys(no_such_key="x")

    # 5. state_dict round trip
    twin = copy.deepcopy(loss)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(torch.randn_like(p))
        for n, b in twin.named_buffers():
            if b.is_floating_point():
                b.add_(1.0)
    twin.load_state_dict(loss.state_dict())
    _assert_same(_call(twin, td, seed), out, f"{name}: after a state_dict round trip")
    return out


def rollout_batch(env_name: str, policy, frames: int = 32, seed: int = 0) -> TensorDictBase:
    """One batch of ``frames`` transitions from a real gymnasium env, collected by ``rlbench.collectors.Collector``."""
    from rlbench.collectors import Collector
    from rlbench.envs import GymEnv

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
    """A batch as an off-policy loop sees it: collected from a gymnasium env, stored in an rlbench
    ``ReplayBuffer`` and sampled back.
    """
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    buffer = ReplayBuffer(storage=LazyTensorStorage(frames))
    buffer.extend(rollout_batch(env_name, policy, frames=frames, seed=seed))
    torch.manual_seed(seed)
    return buffer.sample(batch_size)


def check_runs_on(loss, td: TensorDictBase, device) -> TensorDictBase:
    """``loss`` moved to ``device`` runs on ``td`` moved there: outputs on the device, backward works."""
    loss = copy.deepcopy(loss).to(device)
    out = loss(td.clone().to(device))
    for k, v in out.items():
        assert v.device.type == torch.device(device).type, f"{type(loss).__name__}: {k!r} is on {v.device}, not {device}"
    sum(v for v in _losses(out).values()).backward()
    return out


#: use with ``@pytest.mark.gpu``: ``@pytest.mark.gpu @needs_cuda def test_...``
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
