"""Cost of rlbench's modules against plain-torch equivalents computing the same numbers.

1. ``TanhNormal`` rsample + log_prob of a ``[256, 6]`` batch (a SAC actor step) vs torch's
   ``Independent(TransformedDistribution(Normal, [TanhTransform, AffineTransform]))``, forward and
   backward;
2. ``ProbabilisticActor`` (TensorDict in, TensorDict out) vs calling the same network and
   distribution on tensors: the price of the TensorDict plumbing for one env step (batch 1) and a
   training batch (256);
3. ``LSTMModule`` in recurrent mode on ``[32, 64]`` sequences with episode resets vs a hand-written
   torch step loop (what the module must reproduce exactly).

The ratio is rlbench time / baseline time (< 1 is faster). Run: ``python benchmarks/bench_modules.py``
(``--quick``: tiny sizes, seconds).
"""
from __future__ import annotations

import torch
from _harness import best_time, parse_args, report
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import distributions as D
from torch import nn

from rlbench.modules import ExplorationType, LSTMModule, ProbabilisticActor, TanhNormal, set_exploration_type


def paired(ours, ref, repeats: int) -> tuple[float, float]:
    """Best times of ``ours`` and ``ref`` measured in alternation (a shared machine's load hits both)."""
    t_ours = t_ref = float("inf")
    for _ in range(repeats):
        t_ours = min(t_ours, best_time(ours, 1))
        t_ref = min(t_ref, best_time(ref, 1))
    return t_ours, t_ref


def bench_tanh_normal(args, batch: int, iters: int) -> None:
    loc = torch.randn(batch, 6, requires_grad=True)
    scale = (torch.rand(batch, 6) + 0.1).requires_grad_()
    low, high = torch.full((6,), -2.0), torch.full((6,), 2.0)

    def ours():
        for _ in range(iters):
            d = TanhNormal(loc, scale, low, high)
            a = d.rsample()
            (d.log_prob(a).sum() + a.sum()).backward()

    def torch_ref():
        for _ in range(iters):
            d = D.Independent(D.TransformedDistribution(
                D.Normal(loc, scale), [D.TanhTransform(cache_size=1), D.AffineTransform(0.0, 2.0)]), 1)
            a = d.rsample()
            (d.log_prob(a).sum() + a.sum()).backward()

    t_ours, t_ref = paired(ours, torch_ref, args.repeats)
    report(f"TanhNormal rsample+log_prob+backward [{batch}, 6]", t_ours / iters * 1e6, t_ref / iters * 1e6, "us",
           "torch TransformedDistribution", json_path=args.json)


def bench_actor(args, batch: int, iters: int) -> None:
    net = nn.Sequential(nn.Linear(17, 64), nn.Tanh(), nn.Linear(64, 12), NormalParamExtractor())
    actor = ProbabilisticActor(TensorDictModule(net, ["observation"], ["loc", "scale"]), in_keys=["loc", "scale"],
                               distribution_class=TanhNormal, return_log_prob=True)
    obs = torch.randn(batch, 17)
    td = TensorDict(observation=obs, batch_size=[batch])

    def ours():
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            for _ in range(iters):
                actor(td)

    def plain():
        with torch.no_grad():
            for _ in range(iters):
                loc, scale = net(obs)
                d = TanhNormal(loc, scale)
                a = d.rsample()
                d.log_prob(a)

    t_ours, t_ref = paired(ours, plain, args.repeats)
    report(f"ProbabilisticActor step, batch {batch}", t_ours / iters * 1e6, t_ref / iters * 1e6, "us",
           "same net + TanhNormal on tensors", json_path=args.json)


def bench_lstm(args, B: int, T: int) -> None:
    mod = LSTMModule(8, 32).set_recurrent_mode(True)
    lstm = mod.rnn
    is_init = torch.rand(B, T, 1) < 0.02
    td = TensorDict(observation=torch.randn(B, T, 8), is_init=is_init, batch_size=[B, T])

    def ours():
        with torch.no_grad():
            mod(td.clone(False))

    def loop():
        with torch.no_grad():
            x, keep = td["observation"], (~is_init[..., 0]).float()
            h = torch.zeros(1, B, 32)
            c = torch.zeros(1, B, 32)
            outs, hs, cs = [], [], []
            for t in range(T):
                k = keep[:, t].view(1, B, 1)
                y, (h, c) = lstm(x[:, t : t + 1], (h * k, c * k))
                outs.append(y)
                hs.append(h)
                cs.append(c)
            torch.cat(outs, 1), torch.stack(hs, 2), torch.stack(cs, 2)

    t_ours, t_ref = paired(ours, loop, args.repeats)
    report(f"LSTMModule recurrent mode [{B}, {T}] with resets", t_ours * 1e3, t_ref * 1e3, "ms",
           "hand-written torch step loop", json_path=args.json)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if not args.quick:
        args.repeats = max(args.repeats, 11)
    iters = 5 if args.quick else 200
    bench_tanh_normal(args, 16 if args.quick else 256, iters)
    for batch in ([1] if args.quick else [1, 256]):
        bench_actor(args, batch, iters)
    bench_lstm(args, 4 if args.quick else 32, 8 if args.quick else 64)


if __name__ == "__main__":
    main()
