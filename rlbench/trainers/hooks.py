"""Trainer hooks under TorchRL's names: small objects whose ``register(trainer)`` puts them in a :class:`Trainer`.

Code written for TorchRL's trainer builds these and registers them; here each one plugs into the
matching stage of rlbench's :class:`~rlbench.trainers.Trainer` (see its module docstring for the
order of the stages):

* :class:`ReplayBufferTrainer`: store each batch, train on samples. rlbench's Trainer stores, samples
  and updates priorities itself at fixed points of its loop when it has a replay buffer, so registering
  hands the buffer to those points (``Trainer.set_replay_buffer``): the run is exactly
  ``Trainer(..., replay_buffer=rb)``'s.
* :class:`UpdateWeights`: ``collector.update_policy_weights_()`` every ``update_weights_interval``
  batches (``post_steps``); the Trainer's own push after every batch is then left to it.
* :class:`LogScalar`: a statistic of a batch entry, logged before the optimisation (``pre_steps_log``).
* :class:`LogValidationReward`: a rollout of the policy in a separate env every ``record_interval``
  batches, its mean reward per step and mean trajectory return logged (``post_steps_log``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import set_interaction_type

from ..collectors import ExplorationType, split_trajectories
from ..collectors.utils import MASK_KEY

__all__ = ["ReplayBufferTrainer", "UpdateWeights", "LogScalar", "LogValidationReward"]

REWARD_KEY = ("next", "reward")


def _key_name(key) -> str:
    return "/".join(key) if isinstance(key, tuple) else str(key)


class ReplayBufferTrainer:
    """Off-policy training from a replay buffer: each batch is stored, optimisation steps sample from it.

    Args:
        replay_buffer: the buffer (any rlbench replay buffer; prioritized ones get their priorities
            updated from the loss's ``td_error``).
        batch_size: sample size (default: the buffer's own ``batch_size``, or the Trainer's).
        memmap: TorchRL's switch to a memory-mapped copy; refused (give the buffer a ``LazyMemmapStorage``).
        device: move each sample there before the loss.
        flatten_tensordicts: accepted for TorchRL code; rlbench stores the batch as transitions either
            way (flat for a one-dimensional storage, time-major rows for a storage with ``ndim=2``).
        max_dims, iterate: TorchRL's padding and iteration modes; refused.

    Example:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.buffers import LazyTensorStorage, ReplayBuffer
        >>> from rlbench.collectors import Collector
        >>> from rlbench.envs import CartPoleEnv
        >>> from rlbench.objectives import DQNLoss
        >>> from rlbench.trainers import Trainer
        >>> qnet = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        >>> collector = Collector(CartPoleEnv(batch_size=[4]), lambda td: td.set("action", qnet(td)["action_value"]
        ...                       .argmax(-1)), frames_per_batch=64, total_frames=256)
        >>> loss = DQNLoss(qnet, action_space="categorical")
        >>> trainer = Trainer(collector=collector, loss_module=loss, optimizer=torch.optim.Adam(loss.parameters()),
        ...                   optim_steps_per_batch=2, progress_bar=False)
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(1_000), batch_size=32)
        >>> ReplayBufferTrainer(rb, flatten_tensordicts=True).register(trainer)
        >>> trainer.train()
        >>> len(rb), trainer.updates
        (256, 8)
    """

    def __init__(self, replay_buffer, batch_size: int | None = None, memmap: bool = False, device=None,
                 flatten_tensordicts: bool = False, max_dims: Sequence[int] | None = None, iterate: bool = False):
        if memmap:
            raise ValueError("ReplayBufferTrainer: memmap=True is TorchRL's memory-mapped copy of each batch; in "
                             "rlbench give the buffer a LazyMemmapStorage(max_size, scratch_dir=...) instead")
        if max_dims is not None:
            raise ValueError("ReplayBufferTrainer: max_dims (padding batches to a common shape) is not supported: "
                             "rlbench stores each batch as transitions, which need no padding")
        if iterate:
            raise ValueError("ReplayBufferTrainer: iterate=True is not supported: rlbench's Trainer samples "
                             "optim_steps_per_batch batches from the buffer after each collected batch")
        if not callable(getattr(replay_buffer, "extend", None)) or not callable(getattr(replay_buffer, "sample",
                                                                                        None)):
            raise TypeError(f"ReplayBufferTrainer: expected a replay buffer (extend and sample), got "
                            f"{type(replay_buffer).__name__}")
        self.replay_buffer, self.batch_size = replay_buffer, batch_size
        self.device = None if device is None else torch.device(device)
        self.flatten_tensordicts = flatten_tensordicts

    def register(self, trainer, name: str = "replay_buffer") -> None:
        """Make ``trainer`` store its batches in this buffer and optimise on samples of it."""
        trainer.set_replay_buffer(self.replay_buffer, batch_size=self.batch_size)
        if self.device is not None:
            trainer.register_op("process_optim_batch", self._to_device)

    def _to_device(self, sample: TensorDictBase) -> TensorDictBase:
        return sample.to(self.device)


class UpdateWeights:
    """Push the trained policy's weights to the collector every ``update_weights_interval`` batches.

    Registered at ``post_steps``; the Trainer then stops its own push after every batch
    (``trainer.update_weights_interval = 0``), so the weights go out only on this schedule. rlbench's
    single-process :class:`~rlbench.collectors.Collector` runs the trained policy itself (a push is a
    no-op); multi-process collectors copy the weights to their workers.

    Args:
        collector: the collector to push to (the trainer's).
        update_weights_interval: batches between two pushes.

    Example:
        >>> class Counting:
        ...     pushes = 0
        ...     def update_policy_weights_(self):
        ...         Counting.pushes += 1
        >>> hook = UpdateWeights(Counting(), update_weights_interval=2)
        >>> for _ in range(5):
        ...     hook()
        >>> Counting.pushes
        2
    """

    def __init__(self, collector, update_weights_interval: int = 1):
        if isinstance(update_weights_interval, bool) or not isinstance(update_weights_interval, int) or \
                update_weights_interval < 1:
            raise ValueError(f"UpdateWeights: update_weights_interval must be a positive int (batches), got "
                             f"{update_weights_interval!r}")
        if not callable(getattr(collector, "update_policy_weights_", None)):
            raise TypeError(f"UpdateWeights: {type(collector).__name__} has no update_policy_weights_()")
        self.collector, self.update_weights_interval = collector, update_weights_interval
        self.counter = 0

    def __call__(self) -> None:
        self.counter += 1
        if self.counter % self.update_weights_interval == 0:
            self.collector.update_policy_weights_()

    def register(self, trainer, name: str = "update_weights") -> None:
        """Push at ``post_steps`` on this schedule, instead of the trainer's push after every batch."""
        if trainer.collector is not self.collector:
            raise ValueError("UpdateWeights: built with another collector than the trainer's")
        trainer.update_weights_interval = 0
        trainer.register_op("post_steps", self)


_REDUCTIONS = {"mean": torch.mean, "sum": torch.sum, "min": torch.min, "max": torch.max}


class LogScalar:
    """Log a statistic of one entry of each collected batch (default: the mean reward), with its std.

    Registered at ``pre_steps_log``: it returns ``{logname: value, logname + "_std": std}``, which the
    trainer logs at the current frame count. Padding steps of a ``split_trajs`` batch (its
    ``("collector", "mask")``) are left out.

    Args:
        key: the batch entry.
        logname: the logged name (default ``"r_training"`` for the reward, else the key, nested parts
            joined by ``/``).
        log_pbar: accepted for TorchRL code (rlbench's progress bar shows the training return, the loss
            and the last evaluation).
        include_std: also log the standard deviation.
        reduction: ``"mean"``, ``"sum"``, ``"min"`` or ``"max"``.
        reward_key: TorchRL's older name for ``key``.

    Example:
        >>> from tensordict import TensorDict
        >>> batch = TensorDict({("next", "reward"): torch.tensor([[1.0], [3.0]])}, batch_size=[2])
        >>> LogScalar()(batch)
        {'r_training': 2.0, 'r_training_std': 1.4142135381698608}
        >>> LogScalar(reduction="max", include_std=False, logname="best")(batch)
        {'best': 3.0}
    """

    def __init__(self, key=REWARD_KEY, logname: str | None = None, log_pbar: bool = False, include_std: bool = True,
                 reduction: str = "mean", *, reward_key=None):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"LogScalar: reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")
        self.key = reward_key if reward_key is not None else key
        self.key = tuple(self.key) if isinstance(self.key, list) else self.key
        self.logname = logname or ("r_training" if self.key == REWARD_KEY else _key_name(self.key))
        self.log_pbar, self.include_std, self.reduction = log_pbar, include_std, reduction

    def __call__(self, batch: TensorDictBase) -> dict[str, float]:
        value = batch.get(self.key, None)
        if value is None:
            raise KeyError(f"LogScalar: the batch has no {self.key!r}; its keys: "
                           f"{', '.join(sorted(_key_name(k) for k in batch.keys(True, True)))}")
        mask = batch.get(MASK_KEY, None)
        value = (value[mask] if mask is not None else value).float()
        out = {self.logname: float(_REDUCTIONS[self.reduction](value))}
        if self.include_std:
            out[f"{self.logname}_std"] = float(value.std()) if value.numel() > 1 else 0.0
        return out

    def register(self, trainer, name: str | None = None) -> None:
        """Log at ``pre_steps_log`` (each collected batch, before the optimisation)."""
        trainer.register_op("pre_steps_log", self)


class LogValidationReward:
    """Every ``record_interval`` batches, roll the policy out in ``environment`` and log its rewards.

    The rollout takes ``record_frames`` steps (episodes that end restart), without gradients, under
    ``exploration_type``, with the policy in ``eval()`` mode. It logs the mean reward per step divided by
    ``frame_skip`` as ``out_keys[("next", "reward")]`` (default ``"r_evaluation"``), the mean over the
    rollout's trajectories of their summed reward as ``"total_" + that`` (the last, unfinished
    trajectories counting what they have), and the mean of any other ``log_keys``. For returns of whole
    episodes, use the Trainer's own ``eval_env=`` evaluation.

    Args:
        record_interval: batches between two rollouts (the first after the first batch).
        record_frames: steps of each rollout.
        frame_skip: the env's frame skip (the mean reward per step is divided by it, as TorchRL does).
        policy_exploration: the policy to roll out.
        environment: the env (``recorder``: TorchRL's older name).
        exploration_type: how the policy acts (TorchRL's default, ``RANDOM``; ``DETERMINISTIC`` for the
            distribution's mode).
        log_keys: entries of the rollout to log.
        out_keys: the logged name of each of ``log_keys``.
        suffix: appended to every logged name.
        log_pbar: accepted for TorchRL code (see :class:`LogScalar`).

    Example:
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.envs import CartPoleEnv
        >>> push = TensorDictModule(lambda o: (o[..., 2] > 0).long(), ["observation"], ["action"])
        >>> hook = LogValidationReward(record_interval=2, record_frames=50, policy_exploration=push,
        ...                            environment=CartPoleEnv(batch_size=[2], seed=0))
        >>> out = hook()  # the first call records
        >>> sorted(out), out["r_evaluation"]
        (['r_evaluation', 'total_r_evaluation'], 1.0)
        >>> hook() is None  # the next one does not
        True
    """

    def __init__(self, *, record_interval: int, record_frames: int, frame_skip: int = 1, policy_exploration,
                 environment=None, exploration_type=ExplorationType.RANDOM, log_keys=None,
                 out_keys: Mapping | None = None, suffix: str | None = None, log_pbar: bool = False, recorder=None):
        environment = recorder if environment is None else environment
        if environment is None:
            raise TypeError("LogValidationReward: missing environment= (the env the policy is rolled out in)")
        for name, value in (("record_interval", record_interval), ("record_frames", record_frames),
                            ("frame_skip", frame_skip)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LogValidationReward: {name} must be a positive int, got {value!r}")
        self.record_interval, self.record_frames, self.frame_skip = record_interval, record_frames, frame_skip
        self.policy_exploration, self.environment = policy_exploration, environment
        self.exploration_type = exploration_type
        self.log_keys = [tuple(k) if isinstance(k, list) else k for k in (log_keys or [REWARD_KEY])]
        names = dict(out_keys or {})
        names = {tuple(k) if isinstance(k, list) else k: v for k, v in names.items()}
        names.setdefault(REWARD_KEY, "r_evaluation")
        self.out_keys = {k: names.get(k, _key_name(k)) + (suffix or "") for k in self.log_keys}
        self.log_pbar = log_pbar
        self.count = 0

    def __call__(self, batch: TensorDictBase | None = None) -> dict[str, float] | None:
        due = self.count % self.record_interval == 0
        self.count += 1
        if not due:
            return None
        policy = self.policy_exploration
        was_training = policy.training if isinstance(policy, torch.nn.Module) else None
        if was_training is not None:
            policy.eval()
        try:
            with torch.no_grad(), set_interaction_type(self.exploration_type):
                rollout = self.environment.rollout(self.record_frames, policy, break_when_any_done=False)
        finally:
            if was_training:
                policy.train()
        out = {}
        for key in self.log_keys:
            value = rollout.get(key).float()
            name = self.out_keys[key]
            if key == REWARD_KEY:
                out[name] = float(value.mean()) / self.frame_skip
                per_traj = split_trajectories(rollout).get(key)  # zero-padded rows, one per trajectory
                out[f"total_{name}"] = float(per_traj.sum(dim=tuple(range(1, per_traj.ndim))).mean())
            else:
                out[name] = float(value.mean())
        return out

    def register(self, trainer, name: str = "recorder") -> None:
        """Record at ``post_steps_log`` (after each batch's optimisation, weight push and evaluation)."""
        trainer.register_op("post_steps_log", self)
