"""``Trainer``: the training loop of the seed's examples, with named hook points.

One batch of :meth:`Trainer.train` is, in order::

    batch = next(collector)                          # collect
    batch = batch_process hooks(batch)               # e.g. reward scaling, extra keys
    pre_steps_log hooks(batch)  -> scalars logged
    replay_buffer.extend(batch)                      # off-policy: store ...
    pre_optim_steps hooks()
    for sub in (buffer samples | epochs of minibatches):   # ... and sample; on-policy: GAE, then epochs
        sub = process_optim_batch hooks(sub)
        loss_td = post_loss hooks(loss(sub))
        optimise the sum of loss_td's "loss_*" (grad-norm clipped), update priorities
        post_optim hooks(); target_updater.step()
    post_steps hooks()
    collector.update_policy_weights_()               # push weights (every update_weights_interval batches)
    every eval_interval frames: evaluate, eval hooks -> scalars logged
    every log_interval frames: log losses and returns; post_steps_log hooks(batch) -> scalars logged

Users change the loop by registering functions on those stages (:meth:`Trainer.register_op`),
never by subclassing. TorchRL's hook objects (:mod:`rlbench.trainers.hooks`: ``ReplayBufferTrainer``,
``UpdateWeights``, ``LogScalar``, ``LogValidationReward``) register themselves with ``hook.register(trainer)``,
and the Trainer takes TorchRL's keywords where the concept is the same (``loss_module=``, ``total_frames=``,
``clip_grad_norm=True`` with ``clip_norm=``...; see :class:`Trainer`).
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping

import torch
from tensordict import TensorDictBase

from ..collectors import EpisodeReturns
from ..loggers import log_scalars
from ..objectives.common import total_loss
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import evaluate_policy
from .progress import ProgressBar

__all__ = ["Trainer", "STAGES"]

#: the hook points, in the order a batch reaches them
STAGES = ("batch_process", "pre_steps_log", "pre_optim_steps", "process_optim_batch", "post_loss", "post_optim",
          "post_steps", "eval", "post_steps_log")

# stages whose hooks may return a replacement for their argument (None keeps it)
_TRANSFORMING = ("batch_process", "process_optim_batch", "post_loss")
# stages whose hooks may return a mapping of scalars to log
_LOGGING = ("pre_steps_log", "eval", "post_steps_log")


class Trainer:
    """Runs collection and optimisation: the loop of the module docstring, with hooks and logging.

    Args:
        collector: yields batches (``rlbench.collectors.Collector`` or a multi-process collector);
            its ``total_frames`` decides when training ends.
        loss: a ``LossModule``; its output's ``loss_*`` entries are summed and minimised.
        optimizer: a ``torch.optim.Optimizer`` (or a list of them, all stepped together).
        replay_buffer: off-policy training: each batch is stored (as flat transitions; time-major
            rows for a storage with ``ndim=2``), then ``optim_steps_per_batch`` batches of
            ``batch_size`` are sampled from it. If the collector was built with this same buffer it
            stores the batches itself and the trainer does not store them again. ``None``: on-policy
            training on the batch.
        target_updater: ``SoftUpdate``/``HardUpdate``, stepped after every optimiser step.
        optim_steps_per_batch: off-policy: gradient steps per collected batch.
        batch_size: off-policy: sample size. On-policy: minibatch size (``None``: the whole batch).
        num_epochs: on-policy: passes over each batch.
        compute_advantage: on-policy: run ``loss.value_estimator`` on the whole batch before each
            epoch (writes ``advantage``/``value_target``). ``None``: when the loss has an
            ``advantage`` key (PPO, A2C).
        min_buffer_size: off-policy: no optimisation until the buffer holds this many items
            (default ``batch_size``).
        clip_grad_norm: clip the gradients' global norm to this value before each step.
        logger: anything with ``log_scalar(name, value, step)`` (``CSVLogger``, ``MultiLogger``,
            ``rlbench.widgets.TrainingMonitor``...). The step is the number of frames collected.
        log_interval: frames between two logs of the training metrics (averaged over the interval).
        eval_env: an env to evaluate the policy in (deterministic actions, :func:`evaluate_policy`)
            every ``eval_interval`` frames; ``eval/return`` is logged.
        eval_interval: frames between evaluations.
        eval_episodes: episodes per evaluation.
        eval_policy: the policy evaluated (default: the collector's).
        progress_bar: show a :class:`ProgressBar` (``tqdm.auto``); a dict is passed to it as kwargs.
        seed: seeds torch, NumPy, Python ``random``, the collector's env and the replay buffer; and
            each evaluation reseeds ``eval_env`` with ``seed + 1 + evaluation index``.
        update_weights_interval: batches between two ``collector.update_policy_weights_()`` calls
            (``0``: never; an :class:`~rlbench.trainers.UpdateWeights` hook sets it, pushing on its own schedule).
        total_frames: stop once this many frames are collected (TorchRL's argument; default: when the
            collector ends).

    TorchRL's keywords, where the concept is the same: ``loss_module=`` is ``loss``; ``total_frames=`` as
    above; ``clip_grad_norm=True`` with ``clip_norm=x`` (or ``clip_norm=x`` alone) clips the global norm at
    ``x``, ``clip_grad_norm=False`` does not clip; ``frame_skip=1``. Others are refused with the rlbench way:
    ``frame_skip`` other than 1 (frames are the collector's env steps), ``clip_grad_norm=False`` with a
    ``clip_norm`` (TorchRL then clamps each gradient value), ``save_trainer_file``/``save_trainer_interval``
    (:meth:`save`), ``async_collection`` (``Collector.start()``). TorchRL's positional order
    ``(collector, total_frames, frame_skip, loss_module, optimizer)`` differs from this one: pass its
    arguments by keyword.

    The returns of the training episodes (of the batches as the ``batch_process`` hooks leave them) are
    kept in ``trainer.episodes``, an :class:`~rlbench.collectors.EpisodeReturns`; the mean of the last 20
    is logged as ``train/episode_return`` and shown in the progress bar.

    Example:
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.collectors import Collector
        >>> from rlbench.envs import CartPoleEnv
        >>> from rlbench.objectives import DQNLoss
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage
        >>> qnet = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        >>> policy = TensorDictModule(lambda q: q.argmax(-1), ["action_value"], ["action"])
        >>> collector = Collector(CartPoleEnv(batch_size=[4]), lambda td: policy(qnet(td)),
        ...                       frames_per_batch=64, total_frames=256)
        >>> loss = DQNLoss(qnet, action_space="categorical")
        >>> trainer = Trainer(collector, loss, torch.optim.Adam(loss.parameters()),
        ...                   ReplayBuffer(storage=LazyTensorStorage(1000)), batch_size=32, progress_bar=False)
        >>> seen = []
        >>> _ = trainer.register_op("post_loss", lambda out: seen.append(float(out["loss_value"].detach())))
        >>> trainer.train()
        >>> trainer.batches, trainer.updates, len(seen)
        (4, 4, 4)
    """

    def __init__(self, collector=None, loss=None, optimizer=None, replay_buffer=None, *, target_updater=None,
                 optim_steps_per_batch: int = 1, batch_size: int | None = None, num_epochs: int = 1,
                 compute_advantage: bool | None = None, min_buffer_size: int | None = None,
                 clip_grad_norm: float | None = None, logger=None, log_interval: int = 1,
                 eval_env=None, eval_interval: int = 10_000, eval_episodes: int = 5, eval_policy=None,
                 progress_bar: bool | dict = True, seed: int | None = None, update_weights_interval: int = 1,
                 total_frames: int | None = None, loss_module=None, frame_skip: int = 1,
                 clip_norm: float | None = None, **torchrl_only):
        loss = _torchrl_loss(loss, loss_module)
        clip_grad_norm = _torchrl_clipping(clip_grad_norm, clip_norm)
        _refuse_torchrl_only(frame_skip, torchrl_only)
        if collector is None or loss is None or optimizer is None:
            missing = [n for n, v in (("collector", collector), ("loss", loss), ("optimizer", optimizer)) if v is None]
            raise TypeError(f"Trainer: missing {', '.join(missing)} (Trainer(collector, loss, optimizer, ...))")
        if total_frames is not None and (isinstance(total_frames, bool) or not isinstance(total_frames, int)
                                         or total_frames < 1):
            raise ValueError(f"Trainer: total_frames must be a positive int or None, got {total_frames!r}")
        self.total_frames = total_frames
        if isinstance(update_weights_interval, bool) or not isinstance(update_weights_interval, int) or \
                update_weights_interval < 0:
            raise ValueError(f"Trainer: update_weights_interval must be an int >= 0, got {update_weights_interval!r}")
        self.update_weights_interval = update_weights_interval
        self.collector, self.loss, self.replay_buffer = collector, loss, replay_buffer
        self.optimizers = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
        for i, opt in enumerate(self.optimizers):
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError(f"Trainer: optimizer #{i} must be a torch.optim.Optimizer, got {type(opt).__name__}")
        if replay_buffer is not None and batch_size is None and getattr(replay_buffer, "batch_size", None) is None:
            raise ValueError("Trainer: off-policy training (replay_buffer given) needs batch_size=... (the sample "
                             "size), or a replay buffer built with a batch_size")
        for name, value in (("optim_steps_per_batch", optim_steps_per_batch), ("num_epochs", num_epochs),
                            ("log_interval", log_interval), ("eval_interval", eval_interval),
                            ("eval_episodes", eval_episodes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Trainer: {name} must be a positive int, got {value!r}")
        self.target_updater = target_updater
        self.optim_steps_per_batch, self.num_epochs = optim_steps_per_batch, num_epochs
        self.batch_size = batch_size if batch_size is not None else getattr(replay_buffer, "batch_size", None)
        if compute_advantage is None:
            compute_advantage = replay_buffer is None and "advantage" in getattr(loss, "tensor_keys", ())
        self.compute_advantage = bool(compute_advantage)
        self._min_buffer_size_given = min_buffer_size is not None
        self.min_buffer_size = self.batch_size if min_buffer_size is None else int(min_buffer_size)
        self.clip_grad_norm = clip_grad_norm
        self.logger, self.log_interval = logger, log_interval
        self.eval_env, self.eval_interval, self.eval_episodes = eval_env, eval_interval, eval_episodes
        self.eval_policy = eval_policy
        self.progress_bar = progress_bar
        self.seed = seed
        self._ops: dict[str, list[Callable]] = {stage: [] for stage in STAGES}
        self._params = [p for opt in self.optimizers for group in opt.param_groups for p in group["params"]]
        # counters (saved in checkpoints)
        self.batches = 0  # batches collected and trained on
        self.updates = 0  # optimiser steps
        self.evaluations = 0
        self._last_log = 0  # frames at the last log / evaluation
        self._last_eval = 0
        self._pending: dict[str, torch.Tensor] = {}  # summed loss terms since the last log
        self._pending_n = 0
        self.episodes = EpisodeReturns()  # training returns, from the batches after the batch_process hooks
        self.last_eval: dict[str, float] = {}  # the latest evaluation's results
        self.last_losses: dict[str, float] = {}  # the latest logged means of the loss terms
        if seed is not None:
            self._seed_everything(int(seed))

    # ----------------------------------------------------------------------------- hooks
    def register_op(self, stage: str, fn: Callable) -> Callable:
        """Run ``fn`` at ``stage`` of every batch (after the ones registered before); returns ``fn``.

        ``batch_process(batch)``, ``process_optim_batch(sub)`` and ``post_loss(loss_td)`` may return
        a TensorDict that replaces their argument (or ``None`` to keep it, e.g. after editing it in
        place). ``pre_steps_log(batch)``, ``eval()`` and ``post_steps_log(batch)`` may return a
        mapping of scalars, logged at the current frame count. ``pre_optim_steps()``,
        ``post_optim()`` and ``post_steps()`` take no argument.
        """
        if stage not in self._ops:
            raise ValueError(f"Trainer.register_op: unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
        if not callable(fn):
            raise TypeError(f"Trainer.register_op({stage!r}): expected a callable, got {type(fn).__name__}")
        self._ops[stage].append(fn)
        return fn

    def set_replay_buffer(self, replay_buffer, batch_size: int | None = None) -> None:
        """Train off-policy from ``replay_buffer``, as if it had been passed to the constructor.

        What :class:`~rlbench.trainers.ReplayBufferTrainer` does when registered. ``batch_size``: the
        sample size (default: the one the Trainer was given, else the buffer's); ``min_buffer_size``
        follows it unless it was given; the buffer is seeded with the Trainer's ``seed``, if any.
        """
        if self.replay_buffer is not None and self.replay_buffer is not replay_buffer:
            raise ValueError("Trainer.set_replay_buffer: the trainer already trains from another replay buffer")
        size = batch_size if batch_size is not None else (self.batch_size if self.batch_size is not None
                                                          else getattr(replay_buffer, "batch_size", None))
        if size is None:
            raise ValueError("Trainer.set_replay_buffer: off-policy training needs a sample size: batch_size=... "
                             "(or a replay buffer built with a batch_size)")
        self.replay_buffer, self.batch_size = replay_buffer, size
        if not self._min_buffer_size_given:
            self.min_buffer_size = size
        if self.seed is not None and hasattr(replay_buffer, "set_seed"):  # as the constructor seeds its buffer
            replay_buffer.set_seed(int(self.seed))

    def _run(self, stage: str, *args):
        ops = self._ops[stage]
        if stage in _TRANSFORMING:
            (value,) = args
            for fn in ops:
                out = fn(value)
                value = value if out is None else out
            return value
        for fn in ops:
            out = fn(*args)
            if stage in _LOGGING and out is not None:
                if not isinstance(out, Mapping):
                    raise TypeError(f"Trainer: a {stage!r} hook ({getattr(fn, '__name__', fn)}) must return a "
                                    f"mapping of scalars to log or None, got {type(out).__name__}")
                self._log(out)
        return None

    # ------------------------------------------------------------------------------ loop
    def train(self, batches: int | None = None) -> None:
        """Train until the collector ends (its ``total_frames``), or for at most ``batches`` batches."""
        if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int) or batches < 1):
            raise ValueError(f"Trainer.train: batches must be a positive int or None (until the collector ends), "
                             f"got {batches!r}")
        collector = self.collector
        total = getattr(collector, "total_frames", -1)
        if self.total_frames is not None:
            total = self.total_frames if not total or total < 0 else min(total, self.total_frames)
        bar_kwargs = self.progress_bar if isinstance(self.progress_bar, dict) else {}
        bar = ProgressBar(total if total and total > 0 else None, disable=not self.progress_bar,
                          initial=self.frames, **bar_kwargs)
        done, seen = 0, self.frames
        try:
            for batch in collector:
                batch = self._run("batch_process", batch)
                self.episodes.update(batch, getattr(getattr(collector, "env", None), "reward_key", "reward"))
                self._run("pre_steps_log", batch)
                stores_itself = getattr(collector, "replay_buffer", None) is self.replay_buffer
                if self.replay_buffer is not None and not stores_itself:
                    self._store(batch)
                self._run("pre_optim_steps")
                for sub in self._optim_batches(batch):
                    self._optim_step(sub)
                self._run("post_steps")
                if self.update_weights_interval and (self.batches + 1) % self.update_weights_interval == 0:
                    collector.update_policy_weights_()
                self.batches += 1
                frames = self.frames
                if self.eval_env is not None and frames - self._last_eval >= self.eval_interval:
                    self.evaluate()
                if frames - self._last_log >= self.log_interval:
                    self._log_training()
                self._run("post_steps_log", batch)
                bar.update(frames - seen, episode_return=self.episodes.mean(last=20), loss=self.last_losses.get("loss"),
                           eval_return=self.last_eval.get("eval/return"))
                done, seen = done + 1, frames
                if batches is not None and done >= batches:
                    break
                if self.total_frames is not None and frames >= self.total_frames:
                    break
        finally:
            bar.close()
            flush = getattr(self.logger, "flush", None)
            if callable(flush):
                flush()

    def shutdown(self) -> None:
        """Shut the collector down (TorchRL's ``trainer.shutdown()``); ``train`` leaves it running."""
        self.collector.shutdown()

    @property
    def frames(self) -> int:
        """Frames collected so far (the collector's count; the logging step)."""
        return int(getattr(self.collector, "frames", 0))

    def _store(self, batch: TensorDictBase) -> None:
        """Write a ``[*B, T]`` batch to the buffer as transitions.

        Flat for a 1-d storage, time-major rows (``[T, *B]``) for a storage that keeps one row per step of
        all sub-envs (``ndim=2``).
        """
        ndim = getattr(getattr(self.replay_buffer, "storage", None), "ndim", 1)
        if ndim == 1 or batch.ndim == 1:
            self.replay_buffer.extend(batch.reshape(-1))
        else:
            self.replay_buffer.extend(batch.permute(batch.ndim - 1, *range(batch.ndim - 1)).contiguous())

    def _optim_batches(self, batch: TensorDictBase) -> Iterable[TensorDictBase]:
        """What the optimiser steps on: samples from the buffer, or epochs of minibatches of the batch."""
        if self.replay_buffer is not None:
            if len(self.replay_buffer) < self.min_buffer_size:
                return
            for _ in range(self.optim_steps_per_batch):
                yield self.replay_buffer.sample(self.batch_size)
            return
        for _ in range(self.num_epochs):
            if self.compute_advantage:  # on the [*B, T] batch: estimators need the time dim
                with torch.no_grad():
                    self.loss.value_estimator(batch)
            flat = batch.reshape(-1)
            size = flat.numel() if self.batch_size is None else self.batch_size
            perm = torch.randperm(flat.numel(), device=flat.device)  # torch's global RNG: saved with checkpoints
            for start in range(0, flat.numel(), size):
                yield flat[perm[start:start + size]]

    def _optim_step(self, sub: TensorDictBase) -> None:
        sub = self._run("process_optim_batch", sub)
        loss_td = self._run("post_loss", self.loss(sub))
        total = total_loss(loss_td)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()
        terms = {k: v.detach() for k, v in loss_td.items() if isinstance(k, str) and k.startswith("loss_")}
        terms["loss"] = total.detach()
        if self.clip_grad_norm is not None:
            terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(self._params, self.clip_grad_norm).detach()
        for opt in self.optimizers:
            opt.step()
        self.updates += 1
        sampler = getattr(self.replay_buffer, "sampler", None)
        # any sampler with priorities (PrioritizedSampler, PrioritizedSliceSampler), not one class
        if getattr(sampler, "has_priorities", False) and hasattr(self.replay_buffer, "update_tensordict_priority"):
            self.replay_buffer.update_tensordict_priority(sub)
        self._run("post_optim")
        if self.target_updater is not None:
            self.target_updater.step()
        for k, v in terms.items():  # summed as tensors: no device sync per step
            v = v.sum() if v.ndim else v
            self._pending[k] = self._pending[k] + v if k in self._pending else v.clone()
        self._pending_n += 1

    # ------------------------------------------------------------------------- logging
    def _log(self, values: Mapping[str, float]) -> None:
        if self.logger is not None and values:
            log_scalars(self.logger, {k: float(v) for k, v in values.items()}, self.frames)

    def _log_training(self) -> None:
        values: dict[str, float] = {}
        if self._pending_n:
            self.last_losses = {k: float(v) / self._pending_n for k, v in self._pending.items()}
            values.update({f"train/{k}": v for k, v in self.last_losses.items()})
        ret = self.episodes.mean(last=20)
        if ret is not None:
            values["train/episode_return"] = ret
        values["train/updates"] = self.updates
        self._pending, self._pending_n = {}, 0
        self._last_log = self.frames
        self._log(values)

    def evaluate(self) -> dict[str, float]:
        """Evaluate now: mean/std/min/max of ``eval_episodes`` returns, logged under ``eval/``; runs the eval hooks."""
        if self.eval_env is None:
            raise RuntimeError("Trainer.evaluate: no eval_env was given to the Trainer")
        policy = self.eval_policy if self.eval_policy is not None else self.collector.policy
        if self.seed is not None:  # the same evaluation episodes however the run was interrupted
            self.eval_env.set_seed(self.seed + 1 + self.evaluations)
        returns = torch.tensor(evaluate_policy(self.eval_env, policy, self.eval_episodes), dtype=torch.float64)
        self.evaluations += 1
        self._last_eval = self.frames
        result = {"eval/return": float(returns.mean()) if returns.numel() else float("nan"),
                  "eval/return_std": float(returns.std(unbiased=False)) if returns.numel() else float("nan"),
                  "eval/return_min": float(returns.min()) if returns.numel() else float("nan"),
                  "eval/return_max": float(returns.max()) if returns.numel() else float("nan"),
                  "eval/episodes": float(returns.numel())}
        self.last_eval = result
        self._log(result)
        self._run("eval")
        return result

    # ---------------------------------------------------------------------- checkpoints
    def _seed_everything(self, seed: int) -> None:
        import random

        import numpy as np

        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        if hasattr(self.collector, "set_seed"):
            self.collector.set_seed(seed)
        if self.replay_buffer is not None and hasattr(self.replay_buffer, "set_seed"):
            self.replay_buffer.set_seed(seed)

    def _components(self) -> dict:
        parts = {"loss": self.loss}
        if callable(getattr(self.collector, "state_dict", None)):
            parts["collector"] = self.collector
        # else (multi-process collectors): only the frame count is kept (in the counters); the workers'
        # envs carry on from wherever they are, so the resumed run is not an exact continuation
        for i, opt in enumerate(self.optimizers):
            parts[f"optimizer_{i}"] = opt
        policy = getattr(self.collector, "policy", None)
        if isinstance(policy, torch.nn.Module):  # e.g. exploration state (annealed epsilon) outside the loss
            parts["policy"] = policy
        if self.replay_buffer is not None:
            parts["replay_buffer"] = self.replay_buffer
        return parts

    def _counters(self) -> dict:
        updater = self.target_updater
        return {
            "batches": self.batches, "updates": self.updates, "evaluations": self.evaluations,
            "last_log": self._last_log, "last_eval": self._last_eval,
            "pending": {k: v.cpu() for k, v in self._pending.items()}, "pending_n": self._pending_n,
            "episode_carry": dict(self.episodes.carry), "recent_returns": list(self.episodes.recent),
            "target_counter": getattr(updater, "counter", None), "collector_frames": self.frames,
        }

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Checkpoint the run to ``path`` (see :func:`~rlbench.trainers.save_checkpoint`).

        Saves the loss (networks, target parameters, e.g. ``log_alpha``), optimisers, the policy,
        the replay buffer (directory ``<path>.buffers.<version>/``), the collector (its env's in-flight
        state when the env is torch-native, else the next batch starts with a reset), the trainer's
        counters and the RNG states; ``extra`` components (an LR scheduler...) too. Atomic: a save
        killed at any point leaves the previous checkpoint whole, or the new one once complete.
        """
        save_checkpoint(path, trainer=self._counters(), **self._components(), **extra)

    def load(self, path: str | os.PathLike, *, allow_pickle: bool = False, **extra) -> None:
        """Restore a :meth:`save` checkpoint into this trainer (built the same way) and ``extra``.

        Nothing is unpickled: the file loads with ``weights_only=True`` and the replay buffer's files
        must hold only the tensors their metadata declares, else :class:`UnsafeCheckpointError`
        (``allow_pickle=True`` lets the buffer unpickle its files: trusted checkpoints only).
        """
        values = load_checkpoint(path, allow_pickle=allow_pickle, **self._components(), **extra)
        if "trainer" not in values:
            raise KeyError(f"Trainer.load: {path} was not written by Trainer.save (no trainer counters)")
        c = values["trainer"]
        self.batches, self.updates, self.evaluations = c["batches"], c["updates"], c["evaluations"]
        self._last_log, self._last_eval = c["last_log"], c["last_eval"]
        dev = self._params[0].device if self._params else torch.device("cpu")
        self._pending, self._pending_n = {k: v.to(dev) for k, v in c["pending"].items()}, c["pending_n"]
        self.episodes.carry = dict(c["episode_carry"])
        self.episodes.recent.clear()
        self.episodes.recent.extend(c["recent_returns"])
        if "collector" not in self._components() and hasattr(self.collector, "frames"):
            self.collector.frames = c["collector_frames"]
        if c["target_counter"] is not None and self.target_updater is not None:
            self.target_updater.counter = c["target_counter"]

    def __repr__(self) -> str:
        mode = "off-policy" if self.replay_buffer is not None else "on-policy"
        hooks = {s: len(f) for s, f in self._ops.items() if f}
        return (f"Trainer({mode}, loss={type(self.loss).__name__}, frames={self.frames}, batches={self.batches}, "
                f"updates={self.updates}, hooks={hooks})")


# ------------------------------------------------------------------------- TorchRL's keywords
_TORCHRL_ONLY = {
    "save_trainer_file": "rlbench's Trainer saves with trainer.save(path) (an atomic checkpoint of everything it "
                         "needs to resume); to save as it goes, register a post_steps hook that calls it",
    "save_trainer_interval": "rlbench's Trainer saves with trainer.save(path); to save every N frames, register a "
                             "post_steps hook that calls it when trainer.frames has moved N past the last save",
    "async_collection": "rlbench collects in the background with Collector(..., replay_buffer=rb).start(); train "
                        "on rb.sample() in your loop and end with collector.async_shutdown()",
}


def _torchrl_loss(loss, loss_module):
    if loss is not None and loss_module is not None:
        raise TypeError("Trainer: give loss or loss_module (TorchRL's name for it), not both")
    loss = loss_module if loss is None else loss
    if isinstance(loss, int) and not isinstance(loss, bool):
        raise TypeError("Trainer: the second argument is the loss; an int there looks like TorchRL's positional "
                        "order (collector, total_frames, frame_skip, loss_module, optimizer): pass those by keyword "
                        "(Trainer(collector=..., total_frames=..., loss_module=..., optimizer=...))")
    return loss


def _torchrl_clipping(clip_grad_norm, clip_norm):
    """The max gradient norm (or None) from rlbench's ``clip_grad_norm`` or TorchRL's bool and ``clip_norm``."""
    if isinstance(clip_grad_norm, bool):
        if clip_grad_norm:
            return 100.0 if clip_norm is None else float(clip_norm)  # TorchRL's default clip_norm
        if clip_norm is not None:
            raise ValueError("Trainer: clip_grad_norm=False with clip_norm clamps each gradient value in TorchRL; "
                             "rlbench's Trainer clips the global gradient norm only: pass clip_grad_norm=<max norm> "
                             "(or neither, for no clipping)")
        return None
    if clip_norm is not None:
        if clip_grad_norm is not None:
            raise TypeError("Trainer: give the max gradient norm once: clip_grad_norm=<max norm> (or TorchRL's "
                            "clip_grad_norm=True, clip_norm=<max norm>)")
        return float(clip_norm)
    return clip_grad_norm


def _refuse_torchrl_only(frame_skip, extra: dict) -> None:
    if frame_skip != 1:
        raise ValueError(f"Trainer: frame_skip={frame_skip!r} is not supported: rlbench counts frames as the env steps "
                         f"the collector takes (collector.frames), whatever the env skips inside a step; drop "
                         f"frame_skip (and scale total_frames yourself if you count skipped frames)")
    for name in extra:
        if name in _TORCHRL_ONLY:
            raise TypeError(f"Trainer: {name}= is TorchRL's and not supported: {_TORCHRL_ONLY[name]}")
        raise TypeError(f"Trainer.__init__() got an unexpected keyword argument {name!r}")
