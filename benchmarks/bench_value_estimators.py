"""Vectorized GAE, TD(lambda) and V-trace against a per-step Python reference, ``torch.cumsum`` and TorchRL.

Inputs are rollout-shaped ``[B, T, 1]`` tensors (float32) with terminations and truncations at
random steps (about 1% each). For each shape the script times, in the same run:

1. ``generalized_advantage_estimate`` / ``td_lambda_return_estimate`` / ``vtrace_advantage_estimate``
   (rlbench, vectorized);
2. the per-step reference: a Python loop over ``T`` doing the recursion with torch ops (what most
   hand-written GAE code does; for V-trace, the paper's recursion, eq. (1) and sec. 4.2);
3. ``torch.cumsum`` over the same ``[B, T, 1]`` data along time: the cost of one sweep;
4. TorchRL's vectorized estimators on the same tensors: ``vec_generalized_advantage_estimate``,
   ``vec_td_lambda_return_estimate`` and ``vtrace_advantage_estimate`` (same signatures), when
   TorchRL can be imported (``--torchrl-path DIR`` adds DIR to ``sys.path``; default
   ``/tmp/trl_site`` if it exists). Their outputs are compared with ours first and the largest
   difference printed (the benchmark goes on either way: a difference is a finding to report).

Printed ratios: ours / reference (lower is better; target <= 0.1, i.e. >= 10x faster at T=2048),
ours / cumsum (target <= 2x) and ours / TorchRL (issue 17 target 6: <= 0.5, i.e. >= 2x faster, at
[8, 2048] and [64, 1024]). A scaling table over T = 128 .. 4096 at B=8 follows.

Run: ``python benchmarks/bench_value_estimators.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import os
import sys

import torch
from _harness import best_time, parse_args, report

from rlbench.objectives.value import generalized_advantage_estimate, td_lambda_return_estimate
from rlbench.objectives.value import vtrace_advantage_estimate as vtrace

GAMMA, LMBDA = 0.99, 0.95
RHO, C = 1.0, 0.95  # V-trace's thresholds (the IMPALA recipe's)
DEFAULT_TORCHRL_PATH = "/tmp/trl_site"


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


def log_probs(b: int, t: int):
    """Log-probabilities (pi, mu) of the taken actions: a learner a few updates ahead of the actors."""
    g = torch.Generator().manual_seed(1)
    log_mu = -torch.rand((b, t, 1), generator=g) * 2.0
    return log_mu + 0.3 * torch.randn((b, t, 1), generator=g), log_mu


def ref_vtrace(log_pi, log_mu, v, nv, r, done, term):
    """The paper's recursion one step at a time: v_s = V(x_s) + delta_s + gamma c_s (v_{s+1} - V(x_{s+1}))."""
    ratio = (log_pi - log_mu).exp()
    rho, c = ratio.clamp(max=RHO), ratio.clamp(max=C)
    boot, cont = (~term).float(), (~done).float()
    vs = torch.empty_like(r)
    adv = torch.empty_like(r)
    acc = torch.zeros_like(r[:, 0])  # v_{s+1} - V(x_{s+1}) of the step after
    next_vs = nv[:, -1]  # v_{s+1}: after the last step, the bootstrap value
    for s in range(r.shape[1] - 1, -1, -1):
        delta = rho[:, s] * (r[:, s] + GAMMA * boot[:, s] * nv[:, s] - v[:, s])
        acc = delta + GAMMA * c[:, s] * cont[:, s] * acc
        vs[:, s] = v[:, s] + acc
        # an episode that ends at s bootstraps from V(x_{s+1}) of its own final observation
        next_vs = torch.where(done[:, s], nv[:, s], next_vs)
        adv[:, s] = rho[:, s] * (r[:, s] + GAMMA * boot[:, s] * next_vs - v[:, s])
        next_vs = vs[:, s]
    return adv, vs


def torchrl_estimators(path: str | None):
    """TorchRL's vectorized estimators and its version, or (None, why it could not be imported).

    The estimators come as a dict: ``"gae"``, ``"td_lambda"`` and ``"vtrace"``.
    """
    if path and os.path.isdir(path) and path not in sys.path:
        sys.path.insert(0, path)
    try:
        import torchrl
        from torchrl.objectives.value import functional as trl
    except Exception as err:  # noqa: BLE001 - any import failure: report it, go on without the baseline
        return None, f"{type(err).__name__}: {err}"
    fns = {"gae": trl.vec_generalized_advantage_estimate, "td_lambda": trl.vec_td_lambda_return_estimate,
           "vtrace": trl.vtrace_advantage_estimate}
    return fns, torchrl.__version__


def bench_vtrace(b: int, t: int, args, baseline, with_ref: bool = True) -> None:
    v, nv, r, done, term = data(b, t)
    log_pi, log_mu = log_probs(b, t)
    ours = lambda: vtrace(GAMMA, log_pi, log_mu, v, nv, r, done, term, rho_thresh=RHO, c_thresh=C)  # noqa: E731
    adv, vs = ours()
    if with_ref:
        ref_adv, ref_vs = ref_vtrace(log_pi, log_mu, v, nv, r, done, term)
        torch.testing.assert_close(vs, ref_vs, atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(adv, ref_adv, atol=1e-3, rtol=1e-3)
    inner = max(1, 2000 // t) if not args.quick else 1
    rep = lambda f: (lambda: [f() for _ in range(inner)])  # noqa: E731
    ref = lambda: ref_vtrace(log_pi, log_mu, v, nv, r, done, term)  # noqa: E731
    theirs = None
    fns, version = baseline
    if fns is not None:
        fn = fns["vtrace"]
        theirs = lambda: fn(GAMMA, log_pi, log_mu, v, nv, r, done, term, rho_thresh=RHO, c_thresh=C)  # noqa: E731
        their_adv, their_vs = theirs()
        print(f"   V-trace [{b}, {t}]: largest |ours - TorchRL {version}|: value_target "
              f"{(vs - their_vs).abs().max().item():.2e}, advantage {(adv - their_adv).abs().max().item():.2e}")
    t_ours = t_ref = t_trl = float("inf")
    ref_rep = 1 if args.quick else max(1, args.repeats // 2)
    for i in range(args.repeats):  # interleaved: all three see the same machine load
        t_ours = min(t_ours, best_time(rep(ours), 3) / inner)
        if theirs is not None:
            t_trl = min(t_trl, best_time(rep(theirs), 3) / inner)
        if with_ref and i < ref_rep:
            t_ref = min(t_ref, best_time(ref, 1))
    if with_ref:
        report(f"V-trace [{b}, {t}] vs per-step loop", t_ours * 1e6, t_ref * 1e6, "us", "per-step reference",
               target="<= 0.1x at T=2048", json_path=args.json)
    if theirs is not None:
        report(f"V-trace [{b}, {t}] vs TorchRL", t_ours * 1e6, t_trl * 1e6, "us",
               f"TorchRL {version} vtrace_advantage_estimate", target="<= 0.5", json_path=args.json)
    elif b == 8 or args.quick:
        print(f"   (TorchRL not importable: {version}; V-trace compared with the per-step loop only)")


def bench_shape(b: int, t: int, args, baseline, with_ref: bool = True) -> None:
    v, nv, r, done, term = data(b, t)
    ours_gae = lambda: generalized_advantage_estimate(GAMMA, LMBDA, v, nv, r, done=done, terminated=term)  # noqa: E731
    ours_tdl = lambda: td_lambda_return_estimate(GAMMA, LMBDA, nv, r, done=done, terminated=term)  # noqa: E731
    fns, version = baseline
    theirs = {"GAE": None, "TD(lambda)": None}
    if fns is not None:
        theirs["GAE"] = lambda: fns["gae"](GAMMA, LMBDA, v, nv, r, done, term)  # noqa: E731
        # rolling_gamma: TorchRL's flag only matters for a per-step gamma tensor; a float gamma is the same either way
        theirs["TD(lambda)"] = lambda: fns["td_lambda"](GAMMA, LMBDA, nv, r, done, term)  # noqa: E731
        (adv, ret), (their_adv, their_ret) = ours_gae(), theirs["GAE"]()
        print(f"   GAE [{b}, {t}]: largest |ours - TorchRL {version}|: advantage "
              f"{(adv - their_adv).abs().max().item():.2e}, value_target {(ret - their_ret).abs().max().item():.2e}")
        print(f"   TD(lambda) [{b}, {t}]: largest |ours - TorchRL {version}|: return "
              f"{(ours_tdl() - theirs['TD(lambda)']()).abs().max().item():.2e}")
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
        t_ours = cs = t_ref = t_trl = float("inf")
        for i in range(args.repeats):
            t_ours = min(t_ours, best_time(rep(ours), 3) / inner)
            cs = min(cs, best_time(cumsum, 3) / inner)
            if theirs[name] is not None:
                t_trl = min(t_trl, best_time(rep(theirs[name]), 3) / inner)
            if with_ref and i < ref_rep:
                t_ref = min(t_ref, best_time(ref, 1))
        if with_ref:
            report(f"{name} [{b}, {t}] vs per-step loop", t_ours * 1e6, t_ref * 1e6, "us", "per-step reference",
                   target="<= 0.1x at T=2048", json_path=args.json)
            print(f"   (speed-up over the per-step loop: {t_ref / t_ours:.0f}x)")
        report(f"{name} [{b}, {t}] vs cumsum", t_ours * 1e6, cs * 1e6, "us", "torch.cumsum over the data",
               target="<= 2x", json_path=args.json)
        if theirs[name] is not None:
            trl_name = "vec_generalized_advantage_estimate" if name == "GAE" else "vec_td_lambda_return_estimate"
            report(f"{name} [{b}, {t}] vs TorchRL", t_ours * 1e6, t_trl * 1e6, "us", f"TorchRL {version} {trl_name}",
                   target="<= 0.5", json_path=args.json)


def main() -> None:
    path = DEFAULT_TORCHRL_PATH
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--torchrl-path"):
            path = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]
            del sys.argv[i:i + (1 if "=" in arg else 2)]
            break
    args = parse_args(__doc__.splitlines()[0])
    baseline = torchrl_estimators(path)
    shapes = [(8, 256), (32, 64)] if args.quick else [(8, 2048), (64, 1024), (256, 128)]
    for b, t in shapes:
        bench_shape(b, t, args, baseline)
        bench_vtrace(b, t, args, baseline)
    if not args.quick:
        print("-- scaling with T at B=8 --")
        for t in (128, 512, 1024, 4096):
            bench_shape(8, t, args, baseline)
            bench_vtrace(8, t, args, baseline, with_ref=False)


if __name__ == "__main__":
    main()
