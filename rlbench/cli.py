"""The ``rlbench`` command.

``rlbench train ALGO --env ENV [--frames N] [--seed S] [--config k=v ...] [--out DIR]`` trains a
recipe (:mod:`rlbench.recipes`) with a progress bar, evaluates it, writes a checkpoint, CSV logs,
the learning curve and an HTML report under ``DIR/<algo>-<env>-<time>/``, prints their paths,
and ends with the line ``final mean evaluation return: R over N episodes``.

``rlbench train --help`` lists the algorithms and their Config fields;
``rlbench train ALGO --help`` shows one algorithm's fields with their defaults.

Example:
    >>> main(["train", "nope"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from .recipes import ALGORITHMS, apply_overrides, config_docs, get_recipe, make_env

__all__ = ["main", "build_parser", "config_help"]


def _type_name(kind) -> str:
    text = getattr(kind, "__name__", None) if typing.get_origin(kind) is None else None
    return text or str(kind).replace("typing.", "")


def config_help(algo: str) -> str:
    """The help text listing one recipe's Config fields: name, type, default and docstring.

    Example:
        >>> "clip_epsilon" in config_help("ppo")
        True
    """
    config_cls = get_recipe(algo).Config
    docs = config_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    lines = [f"{algo} config fields (set with --config key=value):"]
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        lines.append(f"  {f.name} ({_type_name(hints[f.name])}, default {default!r})")
        lines.append(f"      {docs[f.name] or '(undocumented)'}")
    return "\n".join(lines)


def build_parser(algo: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``algo`` its help lists that recipe's fields, else every recipe's."""
    parser = argparse.ArgumentParser(prog="rlbench", description="rlbench: reinforcement learning in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    algos = sorted(ALGORITHMS)
    epilog = "\n\n".join(config_help(a) for a in ([algo] if algo else algos))
    train = parser.train = sub.add_parser(
        "train", help="train an algorithm (rlbench train ALGO --help lists its config)",
        description=f"Train a recipe, evaluate it, and write a checkpoint, logs and an HTML report.\n"
                    f"Algorithms: {', '.join(algos)}.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("algo", metavar="ALGO", choices=algos, type=str.lower,
                       help=f"the algorithm: one of {', '.join(algos)}")
    train.add_argument("--env", help="gymnasium id (CartPole-v1) or torch-native env (native:CartPole); "
                                     "default: the recipe's")
    train.add_argument("--frames", type=_int, help="env steps to train for; default: the recipe's budget, "
                                                   "enough to solve its default env")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override Config fields, e.g. --config lr=1e-3 hidden_sizes=64,64")
    train.add_argument("--out", default="runs", metavar="DIR", help="folder for the run's files (default: runs)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _int(text: str) -> int:
    value = float(text)  # "2e4" is a fine way to write a budget
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def _algo_in(argv: list[str]) -> str | None:
    # the help of `rlbench train ALGO --help` lists only ALGO's fields: find ALGO before parsing
    if len(argv) >= 2 and argv[0] == "train" and argv[1].lower() in ALGORITHMS:
        return argv[1].lower()
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rlbench`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_algo_in(argv))
    args = parser.parse_args(argv)
    recipe = get_recipe(args.algo)
    config = recipe.Config()
    given = {"env": args.env, "frames": args.frames, "seed": args.seed, "out_dir": args.out}
    try:
        config = apply_overrides(config, {k: v for k, v in given.items() if v is not None})
        config = apply_overrides(config, args.config)
        make_env(config.env).close()  # an unknown env name fails here, with the accepted forms
    except ValueError as err:
        parser.train.error(str(err))
    results = recipe.train(config, progress=not args.no_progress)
    out = sys.stdout
    out.write(f"{args.algo} on {config.env}: {results.frames} env steps, {results.train_time:.1f} s of training\n")
    if results.solved_frames is not None:
        out.write(f"stopped early: an evaluation reached target_return={config.target_return:g} "
                  f"at {results.solved_frames} env steps\n")
    for name, path in results.files.items():
        out.write(f"{name:>10}: {path}\n")
    out.write(results.summary() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
