"""The ``rlbench`` command.

``rlbench train ALGO --env ENV [--frames N] [--seed S] [--config k=v ...] [--out DIR]`` trains a
recipe (:mod:`rlbench.recipes`) with a progress bar, evaluates it, writes a checkpoint, CSV logs,
the learning curve and an HTML report under ``DIR/<algo>-<env>-<time>/``, prints their paths,
and ends with the line ``final mean evaluation return: R over N episodes``.

``rlbench train --help`` lists the algorithms and their Config fields;
``rlbench train ALGO --help`` shows one algorithm's fields with their defaults;
``rlbench train ALGO --env ENV [--config k=v ...] --print-config`` prints the Config the run would use and
exits, marking the fields that hold the published defaults of the env's family (``dmc:`` tasks, ``ALE/``
ids, gymnasium's MuJoCo ids: see :class:`rlbench.recipes.RecipeConfig`). ``--config pixels=true`` trains
from pixels where the suite renders them (``dmc:`` tasks, gymnasium ids); Atari's preprocessing is set by
the ``atari_*`` fields (``--config atari_frame_skip=2``).

Everything is checked before training starts, and a bad argument exits with status 2 and one line
saying what was wrong and what is accepted: numbers (``--frames inf``), each Config value (the
Config's own checks, e.g. ``lr=-1`` or ``gamma=5``), the env name, whether the algorithm can act in the
env (the env is built and the recipe's networks are made from its specs: DQN on Pendulum is refused
here, not after a traceback) and whether ``--out`` can hold the run's files.

Example:
    >>> main(["train", "nope"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import typing
from pathlib import Path

from .recipes import ALGORITHMS, apply_overrides, config_docs, get_recipe, make_env
from .recipes.config import family_fields
from .recipes.envs import env_options

__all__ = ["main", "build_parser", "config_help", "config_listing"]


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


def config_listing(algo: str, config) -> str:
    """The lines ``--print-config`` prints: every field of ``config`` and its value, family defaults marked.

    Example:
        >>> from rlbench.recipes import sac
        >>> text = config_listing("sac", sac.Config(env="dmc:cartpole-swingup"))
        >>> "env family: dmc" in text, "  batch_size = 1024  [dmc default]" in text
        (True, True)
    """
    family, from_family = family_fields(config)
    head = f"{algo} config for {config.env}"
    head += f" (env family: {family}; [{family} default]: its published value)" if family else " (no env family)"
    lines = [head + ":"]
    for f in dataclasses.fields(config):
        mark = f"  [{family} default]" if f.name in from_family else ""
        lines.append(f"  {f.name} = {getattr(config, f.name)!r}{mark}")
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
    train.add_argument("--env", help="gymnasium id (CartPole-v1, HalfCheetah-v5, ALE/Pong-v5), torch-native env "
                                     "(native:CartPole) or DeepMind Control task (dmc:cartpole-swingup); "
                                     "default: the recipe's")
    train.add_argument("--frames", type=_int, help="env steps to train for; default: the recipe's budget, "
                                                   "enough to solve its default env")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override Config fields, e.g. --config lr=1e-3 hidden_sizes=64,64")
    train.add_argument("--out", default="runs", metavar="DIR", help="folder for the run's files (default: runs)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--video", action="store_true",
                       help="film one evaluation episode of the final policy (mp4 in the run's logs/videos/, "
                            "shown in report.html; same as --config video=true)")
    train.add_argument("--print-config", action="store_true",
                       help="print the config the run would use (env-family defaults marked) and exit")
    return parser


def _int(text: str) -> int:
    try:
        value = float(text)  # "2e4" is a fine way to write a budget
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value) or value < 1:  # int(inf) would raise OverflowError
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def _out_dir_problem(path: str) -> str | None:
    """Why the run's files cannot be written under ``path`` (None: they can); leaves no folder behind."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        return f"--out {path!r}: exists and is not a directory"
    created = None  # the top-most folder this check creates (removed again: training makes it itself)
    for parent in [target, *target.parents]:
        if parent.exists():
            break
        created = parent
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as err:
        what = "cannot write into it" if created is None else "cannot create a directory there"
        return f"--out {path!r}: {what} ({err.strerror or err})"
    finally:
        if created is not None:  # remove only the (empty) folders made here, deepest first
            for folder in [target, *target.parents]:
                try:
                    folder.rmdir()
                except OSError:
                    break
                if folder == created:
                    break
    return None


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
        # the Config checks its values as it is built (ValueError: field, value, what is accepted)
        config = apply_overrides(config, {k: v for k, v in given.items() if v is not None})
        config = apply_overrides(config, args.config)
        if args.video:
            config = apply_overrides(config, {"video": True})
        if args.print_config:
            sys.stdout.write(config_listing(args.algo, config) + "\n")
            return 0
        env = make_env(config.env, **env_options(config))  # an unknown env name fails here, with the accepted forms
        try:
            # the recipe's networks are built from the env's specs: an action (or observation) space the
            # algorithm cannot handle is refused now rather than at the start of train(); train() reseeds
            # everything, so this does not change the run
            recipe.make_models(env, config)
        finally:
            env.close()
    except (ValueError, TypeError) as err:
        parser.train.error(str(err))
    if config.out_dir is not None:
        problem = _out_dir_problem(config.out_dir)
        if problem:
            parser.train.error(problem)
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
