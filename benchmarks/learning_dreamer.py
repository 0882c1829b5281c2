"""Learning benchmark of the Dreamer recipe (issue 15): does the world model learn, and does the agent?

Two parts, both on ``dmc:cartpole-swingup`` from 64x64 pixels (action repeat 2, :func:`make_dreamer_env`):

* ``model``: collect ``--episodes`` episodes of random actions into the recipe's replay (uint8 frames,
  whole-episode slices), then train the world model alone (``DreamerModelLoss``: free nats 3, Adam 6e-4,
  gradient norm 100; the paper's network sizes) for ``--updates`` updates on ``--batch BxT`` sequences,
  printing the reconstruction, reward and KL terms every ``--every`` updates. It passes when the mean of
  the last tenth of the reconstruction and reward losses is below the first tenth's.
* ``return``: ``rlbench.recipes.dreamer.train`` for ``--frames`` agent steps from the recipe's defaults
  (its schedule scales the prefill and the updates per block to the budget: see
  ``rlbench.recipes.dreamer.schedule``), evaluating 5 deterministic episodes every ``--eval-every`` frames;
  prints return against frames (agent steps) and env steps. Reference: Dreamer reaches about 750-800 on
  cartpole-swingup at 5e5 env steps (2.5e5 agent steps at action repeat 2) in Hafner et al. 2020's
  learning curves (arXiv:1912.01603, Fig. 10), from the paper's full cadence (100 updates of 50 x 50
  sequences per 1000 env steps): hours of GPU time, days of CPU.

Run::

    python benchmarks/learning_dreamer.py --part model --episodes 5 --updates 3000 --every 100
    python benchmarks/learning_dreamer.py --part return --frames 250000 --eval-every 10000
    python benchmarks/learning_dreamer.py --quick        # a smoke run of both parts (a few minutes on a CPU)

``--config k=v`` changes recipe fields (e.g. ``--config cnn_depth=16 mlp_units=200``) in both parts;
``--threads`` sets torch's threads.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from rlbench.buffers import LazyTensorStorage, SliceSampler, TensorDictReplayBuffer
from rlbench.objectives import DreamerModelLoss
from rlbench.recipes import apply_overrides, dreamer
from rlbench.recipes.envs import seed_everything

REFERENCE = {"dmc:cartpole-swingup": "Dreamer (Hafner et al. 2020): ~750-800 at 5e5 env steps (2.5e5 frames)"}
"""The published figure each env's return is compared with."""


def _batch(text: str) -> tuple[int, int]:
    b, t = text.lower().split("x")
    return int(b), int(t)


def model_part(config, episodes: int, updates: int, every: int, batch: tuple[int, int]) -> bool:
    """Random-action episodes, then world-model updates; prints the loss curve. True when both losses fell."""
    seed_everything(config.seed)
    env = dreamer.make_dreamer_env(config.env, config, seed=config.seed)
    models = dreamer.make_models(env, config)
    steps = dreamer.episode_steps(config)
    b, t = batch
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(episodes * steps), sampler=SliceSampler(slice_len=t),
                                    batch_size=b * t)
    replay.set_seed(config.seed)
    t0 = time.perf_counter()
    returns = []
    for _ in range(episodes):
        rollout = env.rollout(steps + 1)  # one whole episode of uniform random actions
        returns.append(float(rollout["next", "reward"].sum()))
        replay.extend(dreamer._stored(rollout))
    env.close()
    print(f"collected {len(replay)} frames ({episodes} random episodes, returns {[round(r, 1) for r in returns]}) "
          f"in {time.perf_counter() - t0:.1f} s")
    loss_fn = DreamerModelLoss(models.world_model, free_nats=config.free_nats, lambda_kl=config.kl_scale,
                               kl_balance=config.kl_balance)
    params = list(models.world_model.parameters())
    opt = torch.optim.Adam(params, lr=config.model_lr)
    curve = []
    print(f"{'update':>7} {'reco':>10} {'reward':>10} {'kl':>8} {'s/update':>9}")
    t0 = time.perf_counter()
    for k in range(1, updates + 1):
        sample = dreamer._as_float_frames(replay.sample().reshape(b, t))
        out = loss_fn(sample)
        loss = out["loss_model_kl"] + out["loss_model_reco"] + out["loss_model_reward"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        curve.append(tuple(float(out[k].detach()) for k in ("loss_model_reco", "loss_model_reward", "kl")))
        if k % every == 0 or k == 1 or k == updates:
            reco, rew, kl = (statistics.fmean(c[i] for c in curve[-every:]) for i in range(3))
            print(f"{k:>7} {reco:>10.2f} {rew:>10.5f} {kl:>8.3f} {(time.perf_counter() - t0) / k:>9.3f}")
    tenth = max(1, updates // 10)
    first = [statistics.fmean(c[i] for c in curve[:tenth]) for i in range(2)]
    last = [statistics.fmean(c[i] for c in curve[-tenth:]) for i in range(2)]
    fell = all(b < a for a, b in zip(first, last))
    print(f"reconstruction {first[0]:.2f} -> {last[0]:.2f}, reward {first[1]:.5f} -> {last[1]:.5f} (mean of the "
          f"first and last {tenth} updates): {'both fell' if fell else 'NOT both lower'}")
    return fell


def return_part(config) -> None:
    """Train the recipe and print its evaluation curve against frames and env steps."""
    plan = dreamer.schedule(config)
    print(f"schedule for {config.frames} frames: {plan}")
    results = dreamer.train(config, progress=False)
    repeat = config.action_repeat or 1
    print(f"{'frames':>8} {'env steps':>10} {'train s':>9} {'return':>8} {'std':>6}")
    for row in results.curve:
        print(f"{row['frames']:>8} {row['frames'] * repeat:>10} {row['train_time']:>9.1f} {row['eval_return']:>8.1f} "
              f"{row['eval_std']:>6.1f}")
    print(f"reference: {REFERENCE.get(config.env, 'none recorded')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["model", "return", "both"], default="both")
    parser.add_argument("--env", default="dmc:cartpole-swingup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=5, help="random episodes for the model part")
    parser.add_argument("--updates", type=int, default=3000, help="world-model updates in the model part")
    parser.add_argument("--every", type=int, default=100, help="print the model losses every this many updates")
    parser.add_argument("--batch", type=_batch, default=(50, 50), help="BxT sequences per update (model part)")
    parser.add_argument("--frames", type=int, default=250_000, help="agent steps of the return part")
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE", help="recipe fields to change")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small batches, budgets and networks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fields = {"env": args.env, "seed": args.seed, "torch_threads": args.threads}
    if args.quick:
        args.episodes, args.updates, args.every, args.batch = 2, 60, 10, (8, 16)
        args.frames, args.eval_every = 400, 200
        fields |= dict(batch_size=4, batch_length=16, cnn_depth=8, belief_dim=32, state_dim=8, rssm_hidden=32,
                       mlp_units=32, eval_episodes=2, eval_max_steps=100)
    base = apply_overrides(apply_overrides(dreamer.Config(), fields), args.config)
    print(f"torch {torch.__version__}, {args.threads} thread(s), env {base.env}")
    if args.part in ("model", "both"):
        model_cfg = base if not args.quick else apply_overrides(base, {"cnn_depth": 32, "belief_dim": 200,
                                                                      "state_dim": 30, "rssm_hidden": 200})
        model_part(model_cfg, args.episodes, args.updates, args.every, args.batch)
    if args.part in ("return", "both"):
        return_part(apply_overrides(base, {"frames": args.frames, "eval_every": args.eval_every}))


if __name__ == "__main__":
    main()
