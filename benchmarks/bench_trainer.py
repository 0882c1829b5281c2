"""Trainer overhead: PPO on the torch-native batched CartPole, Trainer vs the same loop written by hand.

Both runs do identical work (same seeds, collector, loss, minibatches, optimiser steps); the ratio is
the cost of the Trainer's hooks, bookkeeping, logging and progress bar (disabled here).
Run: python benchmarks/bench_trainer.py [--quick]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _harness import best_time, parse_args, report  # noqa: E402
from tensordict.nn import TensorDictModule  # noqa: E402

from rlbench.collectors import Collector  # noqa: E402
from rlbench.envs import CartPoleEnv  # noqa: E402
from rlbench.modules import MLP, ProbabilisticActor, ValueOperator  # noqa: E402
from rlbench.objectives import ClipPPOLoss, total_loss  # noqa: E402
from rlbench.trainers import CSVLogger, Trainer  # noqa: E402


def build(total_frames, fpb):
    torch.manual_seed(0)
    env = CartPoleEnv(batch_size=[8], seed=0)
    actor = ProbabilisticActor(
        TensorDictModule(MLP(in_features=4, out_features=2, num_cells=[64, 64]), ["observation"], ["logits"]),
        in_keys=["logits"], distribution_class=torch.distributions.Categorical, return_log_prob=True)
    critic = ValueOperator(MLP(in_features=4, out_features=1, num_cells=[64, 64]), in_keys=["observation"])
    loss = ClipPPOLoss(actor, critic)
    collector = Collector(env, actor, frames_per_batch=fpb, total_frames=total_frames)
    return collector, loss, torch.optim.Adam(loss.parameters(), lr=1e-3)


def by_hand(total_frames, fpb, mb=256, epochs=4):
    collector, loss, opt = build(total_frames, fpb)
    for batch in collector:
        for _ in range(epochs):
            with torch.no_grad():
                loss.value_estimator(batch)
            flat = batch.reshape(-1)
            perm = torch.randperm(flat.numel())
            for start in range(0, flat.numel(), mb):
                out = loss(flat[perm[start:start + mb]])
                opt.zero_grad(set_to_none=True)
                total_loss(out).backward()
                opt.step()


def with_trainer(total_frames, fpb, mb=256, epochs=4, logger=None):
    collector, loss, opt = build(total_frames, fpb)
    Trainer(collector, loss, opt, batch_size=mb, num_epochs=epochs, progress_bar=False, logger=logger,
            log_interval=fpb).train()


def main():
    args = parse_args(__doc__)
    total, fpb = (2048, 1024) if args.quick else (32768, 1024)
    base = best_time(lambda: by_hand(total, fpb), args.repeats)
    ours = best_time(lambda: with_trainer(total, fpb), args.repeats)
    report(f"PPO CartPole {total} frames, Trainer", ours, base, "s", "hand-written loop", target="<= 1.05x",
           json_path=args.json)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        ours_csv = best_time(lambda: with_trainer(total, fpb, logger=CSVLogger(d, "b")), args.repeats)
    report(f"PPO CartPole {total} frames, Trainer + CSVLogger", ours_csv, base, "s", "hand-written loop",
           target="<= 1.05x", json_path=args.json)


if __name__ == "__main__":
    main()
