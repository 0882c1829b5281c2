"""The collector's fused loop: the env writes each step's NumPy outputs straight into the batch buffers.

Through the generic loop a step costs, besides the policy and the gym step, two TensorDicts built by
``step_and_maybe_reset`` and five grouped ``torch.stack`` in ``RolloutWriter.write`` (~50 us at one
env, more than half the baseline's whole step). Envs that can describe a step as plain arrays (a
``GymWrapper`` over a SAME_STEP vector env with one observation array, a ``SerialEnv`` stepped by its
NumPy kernel) return a :class:`~rlbench.envs.fused.FusedStepper` from ``env.fused_stepper()``; this
loop then runs the policy's direct call (:class:`~rlbench.collectors._policy_call.DirectPolicy`: a plain
``TensorDictModule``, a ``TensorDictSequential`` of them, or a ``ProbabilisticActor`` with a
``torch.distributions`` head under ``RANDOM``) on the observation tensor and assigns the env's arrays and
everything the policy wrote (the action, ``"sample_log_prob"``, logits...) into NumPy views of the
writer's buffers.

The batch is exactly the generic loop's: the fused loop only runs when the batch has exactly the keys
the generic loop would write (observation and done flags at the root and under ``"next"``, the reward,
the policy's outputs), the policy reads nothing but the observation and the done flags, and it hands back
to the generic loop -- at the step where it stopped, with nothing of that step done twice -- whenever the
policy returns something the direct call cannot write or an action that the env's cheap check would not
take. The next root it leaves carries the policy's outputs as ``step_and_maybe_reset`` carries them.
"""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

from ..envs.fused import FusedStepper
from ._policy_call import NotDirect

DONE = ("done", "terminated", "truncated")


def _layout_ok(keys, obs_key, action_key, reward_key, extras) -> bool:
    want = {(obs_key,), (action_key,), *((k,) for k in DONE), ("next", obs_key), ("next", reward_key),
            *(("next", k) for k in DONE), *((k,) for k in extras)}
    return set(keys) == want


def _policy_plan(collector, env, key):
    """``(direct call, extra output keys)`` when the policy can run fused on ``key``'s tensor, else None."""
    direct = collector._direct
    if direct is None:
        return None
    try:
        direct.check()  # e.g. a sampling head outside ExplorationType.RANDOM: the generic loop
    except NotDirect:
        return None
    outs = direct.out_keys
    if env.action_key not in outs or not all(type(k) is str for k in outs):
        return None
    if not set(direct.in_keys) <= {key, *DONE} or set(outs) & {key, *DONE, "next", env.reward_key}:
        return None
    return direct, [k for k in outs if k != env.action_key]


def fused_loop(collector, writer, td, t: int, random: bool):
    """Run steps ``t..T-1`` fused where possible; returns ``(t, td, out)`` for the generic loop to go on.

    ``t`` is the first step not yet written, ``td`` the current root and ``out`` the policy's output for
    step ``t`` when the policy already ran for it (else None).
    """
    env, T = collector.env, collector.steps_per_batch
    if t >= T or collector.device != env.device or env.device.type != "cpu":
        return t, td, None
    if type(td) is not TensorDict or td.batch_size != env.batch_size:
        return t, td, None
    stepper: FusedStepper | None = env.fused_stepper(random=random)
    if stepper is None:
        return t, td, None
    key = stepper.key
    plan = None if random else _policy_plan(collector, env, key)
    if not random and plan is None:
        return t, td, None
    direct, extras = (None, []) if random else plan
    views = writer.time_major()
    root_keys = set(td.keys())
    if writer.device is None or writer.device.type != "cpu" or not _layout_ok(
        views, key, env.action_key, env.reward_key, extras
    ) or not {key, *DONE} <= root_keys or not root_keys <= {key, *DONE, *extras}:
        return t, td, None
    try:
        arr = {k: v.numpy() for k, v in views.items()}
    except TypeError:  # a dtype NumPy has no match for (bfloat16...): the generic loop writes it
        return t, td, None
    action_key = env.action_key
    obs_b, act_b = arr[(key,)], arr[(action_key,)]
    # the policy's other outputs (log-probs, logits...); NumPy assignment is ~4x cheaper than torch's copy_
    extra_b = [(k, arr[(k,)]) for k in extras]
    nobs_b, rew_b = arr[("next", key)], arr[("next", env.reward_key)]
    ndone_b, nterm_b, ntrunc_b = (arr[("next", k)] for k in DONE)
    root = {k: td.get(k) for k in (key, *DONE)}
    root_obs = root[key].numpy()
    for k in DONE:  # the root's flags at step t; after any step they are all False
        arr[(k,)][t] = root[k].numpy()
    t0 = t
    flag_inputs = not random and any(k != key for k in direct.in_keys)
    rand_action = stepper.rand_action
    run = None if random else direct.run
    stepped = False
    out = values = None
    while t < T:
        last = values
        if random:
            action = rand_action()
        else:
            try:
                values = run(root)
            except NotDirect:  # an output only tensordict knows how to write: run the policy itself
                td = _root(stepper, root_obs, last, extras) if stepped else td
                collector._direct = None
                out = collector.policy(td)
                out = td if out is None else out
                break
            action = values[action_key]
        if not stepper.accepts(action):
            td = _root(stepper, root_obs, last, extras) if stepped else td
            if random:
                td.set(action_key, action)
            else:  # the generic loop steps this action (and reports it if the env refuses it)
                for k in direct.out_keys:
                    td.set(k, values[k])
            out = td
            break
        nxt, reward, term, trunc, done, new_obs = stepper.step(action)
        obs_b[t] = root_obs
        act_b[t] = action.numpy()
        for k, buf in extra_b:
            buf[t] = values[k].numpy()
        nobs_b[t] = nxt
        rew_b[t] = reward
        ndone_b[t] = done
        nterm_b[t] = term
        ntrunc_b[t] = trunc
        root_obs = new_obs
        stepped = True
        root = {key: torch.from_numpy(root_obs)}
        if flag_inputs:
            root.update({k: torch.from_numpy(np.zeros(stepper.shape, bool)) for k in DONE})
        t += 1
    if t > t0 + 1:
        for k in DONE:
            arr[(k,)][t0 + 1:t] = False
    if out is None and stepped:
        td = _root(stepper, root_obs, values, extras)
    return t, td, out


def _root(stepper, root_obs, values, extras):
    """The next root after the last fused step, with the policy's other outputs carried as the generic path does.

    ``step_and_maybe_reset`` carries the root's keys that are not the env's (a policy's log-prob,
    logits...) into the next root, after the observation and the done flags.
    """
    td = stepper.finish(root_obs)
    if values is not None:
        for k in extras:
            td.set(k, values[k])
    return td
