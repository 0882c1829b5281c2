"""Vectorized GAE and TD(lambda) against a per-step Python reference and against one ``torch.cumsum``.

Inputs are rollout-shaped ``[B, T, 1]`` tensors (float32) with terminations and truncations at
random steps (about 1% each). For each shape the script times, in the same run:

1. ``generalized_advantage_estimate`` / ``td_lambda_return_estimate`` (rlbench, vectorized);
2. the per-step reference: a Python loop over ``T`` doing the recursion with torch ops (what most
   hand-written GAE code does);
3. ``torch.cumsum`` over the same ``[B, T, 1]`` data along time: the cost of one sweep.

Printed ratios: ours / reference (lower is better; target <= 0.1, i.e. >= 10x faster at T=2048)
and ours / cumsum (target <= 2x). A scaling table over T = 128 .. 4096 at B=8 follows.

Run: ``python benchmarks/bench_value_estimators.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import torch
from _harness import best_time, parse_args, report

from rlbench.objectives.value import generalized_advantage_estimate, td_lambda_return_estimate

GAMMA, LMBDA = 0.99, 0.95


def data(b: int, t: int):
    g = torch.Generator().manual_seed(0)
    shape = (b, t, 1)
    term = torch.rand(shape, generator=g) < 0.01
    trunc = (torch.rand(shape, generator=g) < 0.01) & ~term
    return (torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(shape, generator=g),
            term | trunc, term)


def ref_gae(v, nv, r, done, term):
    adv = torch.empty_like(r)
    last = torch.zeros_like(r[:, 0])
    notdone, boot = (~done).float(), (~term).float()
    for t in range(r.shape[1] - 1, -1, -1):
        delta = r[:, t] + GAMMA * boot[:, t] * nv[:, t] - v[:, t]
        last = delta + GAMMA * LMBDA * notdone[:, t] * last
        adv[:, t] = last
    return adv, adv + v


def ref_td_lambda(nv, r, done, term):
    out = torch.empty_like(r)
    nxt = torch.zeros_like(r[:, 0])
    T = r.shape[1]
    cont, boot = (~done).float(), GAMMA * (~term).float()
    cont[:, -1] = 0.0
    for t in range(T - 1, -1, -1):
        lam = LMBDA * cont[:, t]
        nxt = r[:, t] + boot[:, t] * ((1 - lam) * nv[:, t] + lam * nxt)
        out[:, t] = nxt
    return out


def bench_shape(b: int, t: int, args, with_ref: bool = True) -> None:
    v, nv, r, done, term = data(b, t)
    ours_gae = lambda: generalized_advantage_estimate(GAMMA, LMBDA, v, nv, r, done=done, terminated=term)  # noqa: E731
    ours_tdl = lambda: td_lambda_return_estimate(GAMMA, LMBDA, nv, r, done=done, terminated=term)  # noqa: E731
    # correctness guard: a benchmark of a wrong answer is worthless
    torch.testing.assert_close(ours_gae()[0], ref_gae(v, nv, r, done, term)[0], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(ours_tdl(), ref_td_lambda(nv, r, done, term), atol=1e-3, rtol=1e-3)
    inner = max(1, 2000 // t) if not args.quick else 1  # several calls per timing for the short ones
    rep = lambda f: (lambda: [f() for _ in range(inner)])  # noqa: E731
    ref_rep = 1 if args.quick else max(1, args.repeats // 2)
    cumsum = rep(lambda: r.cumsum(1))
    for name, ours, ref in (("GAE", ours_gae, lambda: ref_gae(v, nv, r, done, term)),
                            ("TD(lambda)", ours_tdl, lambda: ref_td_lambda(nv, r, done, term))):
        # interleaved: ours, cumsum and the reference see the same machine load (shared CPUs)
        t_ours = cs = t_ref = float("inf")
        for i in range(args.repeats):
            t_ours = min(t_ours, best_time(rep(ours), 3) / inner)
            cs = min(cs, best_time(cumsum, 3) / inner)
            if with_ref and i < ref_rep:
                t_ref = min(t_ref, best_time(ref, 1))
        if with_ref:
            report(f"{name} [{b}, {t}] vs per-step loop", t_ours * 1e6, t_ref * 1e6, "us", "per-step reference",
                   target="<= 0.1x at T=2048", json_path=args.json)
            print(f"   (speed-up over the per-step loop: {t_ref / t_ours:.0f}x)")
        report(f"{name} [{b}, {t}] vs cumsum", t_ours * 1e6, cs * 1e6, "us", "torch.cumsum over the data",
               target="<= 2x", json_path=args.json)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    shapes = [(8, 256), (32, 64)] if args.quick else [(8, 2048), (256, 128)]
    for b, t in shapes:
        bench_shape(b, t, args)
    if not args.quick:
        print("-- scaling with T at B=8 --")
        for t in (128, 512, 1024, 4096):
            bench_shape(8, t, args)


if __name__ == "__main__":
    main()
