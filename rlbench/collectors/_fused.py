"""The collector's fused loop: the env writes each step's NumPy outputs straight into the batch buffers.

Through the generic loop a step costs, besides the policy and the gym step, two TensorDicts built by
``step_and_maybe_reset`` and five grouped ``torch.stack`` in ``RolloutWriter.write`` (~50 us at one
env, more than half the baseline's whole step). Envs that can describe a step as plain arrays (a
``GymWrapper`` over a SAME_STEP vector env with one observation array, a ``SerialEnv`` stepped by its
NumPy kernel) return a :class:`~rlbench.envs.fused.FusedStepper` from ``env.fused_stepper()``; this
loop then calls the policy's module on the observation tensor directly and assigns the arrays into
NumPy views of the writer's buffers.

The batch is exactly the generic loop's: the fused loop only runs when the batch has exactly the keys
the generic loop would write (observation and done flags at the root and under ``"next"``, the action,
the reward), and it hands back to the generic loop -- at the step where it stopped, with nothing of that
step done twice -- whenever the policy returns something other than one tensor or an action that the
env's cheap check would not take.
"""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

from ..envs.fused import FusedStepper

DONE = ("done", "terminated", "truncated")


def _layout_ok(keys, obs_key, action_key, reward_key) -> bool:
    want = {(obs_key,), (action_key,), *((k,) for k in DONE), ("next", obs_key), ("next", reward_key),
            *(("next", k) for k in DONE)}
    return set(keys) == want


def fused_loop(collector, writer, td, t: int, random: bool):
    """Run steps ``t..T-1`` fused where possible; returns ``(t, td, out)`` for the generic loop to go on.

    ``t`` is the first step not yet written, ``td`` the current root and ``out`` the policy's output for
    step ``t`` when the policy already ran for it (else None).
    """
    env, T = collector.env, collector.steps_per_batch
    direct = collector._direct
    if t >= T or collector.device != env.device or env.device.type != "cpu":
        return t, td, None
    if not random and (direct is None or direct.n_out != 1 or direct.out_keys[0] != env.action_key):
        return t, td, None
    if type(td) is not TensorDict or td.batch_size != env.batch_size:
        return t, td, None
    stepper: FusedStepper | None = env.fused_stepper(random=random)
    if stepper is None:
        return t, td, None
    key = stepper.key
    views = writer.time_major()
    if writer.device is None or writer.device.type != "cpu" or not _layout_ok(
        views, key, env.action_key, env.reward_key
    ) or set(td.keys()) != {key, *DONE}:
        return t, td, None
    inputs = None if random else direct.in_keys
    if inputs is not None and not set(inputs) <= {key, *DONE}:
        return t, td, None
    arr = {k: v.numpy() for k, v in views.items()}
    obs_b, act_b = arr[(key,)], views[(env.action_key,)]
    nobs_b, rew_b = arr[("next", key)], arr[("next", env.reward_key)]
    ndone_b, nterm_b, ntrunc_b = (arr[("next", k)] for k in DONE)
    root = {k: td.get(k) for k in (key, *DONE)}
    root_obs = root[key].numpy()
    for k in DONE:  # the root's flags at step t; after any step they are all False
        arr[(k,)][t] = root[k].numpy()
    t0 = t
    module = None if random else direct.module
    flag_inputs = not random and any(k != key for k in inputs)
    rand_action = stepper.rand_action
    stepped = False
    out = None
    while t < T:
        if random:
            action = rand_action()
        else:
            action = module(*[root[k] for k in inputs])
        if type(action) is tuple and len(action) == 1 and type(action[0]) is torch.Tensor:
            # the direct call writes a 1-tuple's tensor too
            action = action[0]
        if not stepper.accepts(action):
            td = stepper.finish(root_obs) if stepped else td
            if random or type(action) is torch.Tensor:
                td.set(env.action_key, action)
                out = td
            else:  # what the direct call does with an output it cannot write: run the module itself
                collector._direct = None
                out = collector.policy(td)
                out = td if out is None else out
            break
        nxt, reward, term, trunc, done, new_obs = stepper.step(action)
        obs_b[t] = root_obs
        act_b[t].copy_(action)
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
        td = stepper.finish(root_obs)
    return t, td, out
