"""The ``gradnas`` command line: ``gradnas search`` runs an architecture search.

Every command has ``--help``. Bad input (an unknown config key, a run folder
that already exists, ...) ends with one ``gradnas: error: ...`` line and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .config import ALGORITHMS, ConfigError, SearchConfig, config_from_dict, config_to_dict, load_config
from .engine.errors import NonFiniteError
from .engine.files import RunDirError
from .engine.interrupt import Interrupted
from .genotype import GenotypeError


def _search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="run an architecture search",
                       description="Run a differentiable architecture search and write a run folder with the "
                                   "found genotype, per-epoch metrics and alphas, and a checkpoint. Defaults: "
                                   "first-order DARTS on the bundled 8x8 digits (no download).")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML config; flags below override its values")
    p.add_argument("--algorithm", choices=ALGORITHMS, help="search algorithm (default: darts)")
    p.add_argument("--epochs", type=int, help="number of search epochs")
    p.add_argument("--batch-size", type=int, help="batch size of the train and val halves")
    p.add_argument("--seed", type=int, help="seed of data split, initialisation and data order")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/search-<time>)")
    p.add_argument("--force", action="store_true", help="reuse a run folder that is not empty")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted search from its last checkpoint, with its stored config")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, summary lines only")
    p.set_defaults(func=_cmd_search)


def _search_config(args: argparse.Namespace) -> SearchConfig:
    cfg = load_config(args.config) if args.config else SearchConfig()
    data = config_to_dict(cfg)
    for flag, key in (("algorithm", ("algorithm",)), ("epochs", ("epochs",)), ("seed", ("seed",)),
                      ("batch_size", ("data", "batch_size"))):
        value = getattr(args, flag)
        if value is not None:
            section = data
            for part in key[:-1]:
                section = section[part]
            section[key[-1]] = value
    return config_from_dict(data)


def _cmd_search(args: argparse.Namespace) -> int:
    from .engine.search import run_search  # torch import only when a command runs

    if args.resume:
        clashing = [flag for flag, value in (("--config", args.config), ("--algorithm", args.algorithm),
                                             ("--epochs", args.epochs), ("--batch-size", args.batch_size),
                                             ("--seed", args.seed), ("--out", args.out)) if value is not None]
        if clashing or args.force:
            raise ConfigError(f"--resume continues the run with the config stored in its folder; "
                              f"it cannot be combined with {', '.join(clashing or ['--force'])}")
        run_search(SearchConfig(), args.resume, progress=not args.no_progress, resume=True)
        return 0
    cfg = _search_config(args)
    out = args.out or time.strftime("runs/search-%Y%m%d-%H%M%S")
    run_search(cfg, out, force=args.force, progress=not args.no_progress)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradnas", description="Differentiable neural architecture search.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _search_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, RunDirError, GenotypeError) as err:
        print(f"gradnas: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"gradnas: {err}", file=sys.stderr)
        return 128 + err.signum
    except NonFiniteError as err:
        print(f"gradnas: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
