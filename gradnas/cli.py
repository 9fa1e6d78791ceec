"""The ``gradnas`` command line: search, train, plot, inspect, export.

Every command has ``--help``. Bad input (an unknown config key, a run folder
that already exists, ...) ends with one ``gradnas: error: ...`` line and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import (
    __version__,
    _openmp_policy,  # noqa: F401  (chooses OpenMP's waiting before torch loads)
)
from .config import (
    ALGORITHMS,
    DATASETS,
    DEVICES,
    SPACES,
    ConfigError,
    SearchConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from .configs import describe, resolve_config, shipped_configs
from .engine.errors import NonFiniteError
from .engine.interrupt import Interrupted
from .errors import GradnasError
from .genotype import GenotypeError


def _search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="run an architecture search",
        description="Run a differentiable architecture search and write a run folder with the "
        "found genotype, per-epoch metrics and alphas, and a checkpoint. Defaults: "
        "first-order DARTS on the bundled 8x8 digits (no download).",
    )
    p.add_argument(
        "--config",
        metavar="NAME|FILE.yaml",
        help="a shipped config by name (see `gradnas configs`) or a YAML file; "
        "flags below override its values",
    )
    p.add_argument("--algorithm", choices=ALGORITHMS, help="search algorithm (default: darts)")
    p.add_argument(
        "--space",
        metavar="darts|nb201|PKG.MODULE:FACTORY|FILE.py:FACTORY",
        help="search space: DARTS cells, NAS-Bench-201 cells, or your own supernet: "
        "FACTORY(in_channels, num_classes) returns an nn.Module built from gradnas mutables "
        "(default: darts)",
    )
    _data_arguments(p)
    p.add_argument("--epochs", type=int, help="number of search epochs")
    p.add_argument("--batch-size", type=int, help="batch size of the train and val halves")
    p.add_argument("--seed", type=int, help="seed of data split, initialisation and data order")
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: one per core, fewer when other processes load the cores)",
    )
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/search-<time>)")
    p.add_argument("--force", action="store_true", help="reuse a run folder that is not empty")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted search from its last checkpoint, with its stored config",
    )
    p.add_argument(
        "--then-train",
        action="store_true",
        help="then retrain the found genotype (into RUN_DIR/train) with the default train config "
        "or --train-config",
    )
    p.add_argument(
        "--train-config",
        metavar="NAME|FILE.yaml",
        help="train config for --then-train: a shipped name or a YAML file",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        help="auto (a GPU when there is one), cpu or cuda (default: auto)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="under torchrun on GPUs: BatchNorm statistics over the global batch",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also log scalars and alpha histograms to RUN_DIR/tensorboard (needs tensorboard)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, summary lines only")
    p.set_defaults(func=_cmd_search)


def _data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="NAME|MODULE:FACTORY",
        help=f"data source: {', '.join(DATASETS)} (default: digits), or your own Dataset factory "
        "PKG.MODULE:FACTORY or FILE.py:FACTORY, called as FACTORY(seed) -> (train, test)",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder of the data files (imagefolder, mnist, kmnist, cifar10/100; fashion_mnist "
        "defaults to /usr/share/datasets/fashion-mnist)",
    )
    p.add_argument("--subset", type=int, metavar="N", help="use N training images (stratified)")
    p.add_argument("--image-size", type=int, metavar="PX", help="resize images to PX x PX")
    p.add_argument("--channels", type=int, choices=(1, 3), help="grey (1) or RGB (3) images")
    p.add_argument("--num-workers", type=int, metavar="N", help="DataLoader worker processes")


def _data_overrides(args: argparse.Namespace) -> dict[tuple[str, ...], object]:
    return {
        ("data", "name"): args.data,
        ("data", "data_dir"): args.data_dir,
        ("data", "batch_size"): args.batch_size,
        ("data", "subset"): args.subset,
        ("data", "image_size"): args.image_size,
        ("data", "channels"): args.channels,
        ("data", "num_workers"): args.num_workers,
    }


def _data_flags(args: argparse.Namespace) -> dict[str, object]:
    return {
        "--data": args.data,
        "--data-dir": args.data_dir,
        "--subset": args.subset,
        "--image-size": args.image_size,
        "--channels": args.channels,
        "--num-workers": args.num_workers,
    }


def _search_config(args: argparse.Namespace) -> SearchConfig:
    cfg = load_config(resolve_config(args.config, "search")) if args.config else SearchConfig()
    return _override(
        cfg,
        {
            ("algorithm",): args.algorithm,
            ("space",): _absolute_space(args.space),
            ("epochs",): args.epochs,
            ("tensorboard",): args.tensorboard,
            ("seed",): args.seed,
            ("threads",): args.threads,
            ("device",): args.device,
            ("sync_bn",): args.sync_bn,
            **_data_overrides(args),
        },
        SearchConfig,
    )


def _absolute_space(space: str | None) -> str | None:
    """A ``file.py:FACTORY`` reference with an absolute path, so that ``--resume`` and
    ``gradnas train RUN_DIR`` find the file from any folder."""
    if space is None or space in SPACES:
        return space
    target, sep, attr = space.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target):
        return f"{Path(target).resolve()}:{attr}"
    return space


def _cmd_search(args: argparse.Namespace) -> int:
    from .engine.search import run_search  # torch import only when a command runs

    train_cfg = _then_train_config(args)  # checked first: a bad one costs no search time
    if args.resume:
        _reject_with_resume(
            args,
            {
                "--config": args.config,
                "--algorithm": args.algorithm,
                "--space": args.space,
                "--tensorboard": args.tensorboard,
                "--device": args.device,
                "--sync-bn": args.sync_bn,
                **_data_flags(args),
                "--epochs": args.epochs,
                "--batch-size": args.batch_size,
                "--seed": args.seed,
                "--threads": args.threads,
                "--out": args.out,
                "--force": args.force,
            },
        )
        result = run_search(SearchConfig(), args.resume, progress=not args.no_progress, resume=True)
        out = str(result.out_dir)
    else:
        cfg = _search_config(args)
        out = args.out if args.out is not None else default_out("search")
        inputs = [resolve_config(args.config, "search")] if args.config else []
        # random search too: it is an algorithm of the one run loop
        run_search(cfg, out, force=args.force, progress=not args.no_progress, inputs=inputs)
    if train_cfg is not None:
        from .engine.run_folder import MARKER
        from .engine.train import run_train

        train_out = Path(out) / "train"
        if args.resume and (train_out / MARKER).is_file():  # the retraining had started too
            run_train(TrainConfig(), train_out, progress=not args.no_progress, resume=True)
            return 0
        # the run folder, not only its genotype.json: a custom space reads space.json there
        train_cfg = _override(train_cfg, {("genotype",): str(Path(out))}, TrainConfig)
        run_train(train_cfg, train_out, force=args.force, progress=not args.no_progress)
    return 0


def _then_train_config(args: argparse.Namespace) -> TrainConfig | None:
    """The train config of ``--then-train`` / ``--train-config``, or None without them."""
    if not (args.then_train or args.train_config):
        return None
    if not args.train_config:
        return TrainConfig()
    return load_config(resolve_config(args.train_config, "train"), TrainConfig)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="retrain the derived network of a genotype",
        description="Train the network of a genotype (a published name such as DARTS_V2, a "
        "genotype.json, or a search run folder) from scratch and report its test "
        "accuracy. Defaults: the bundled 8x8 digits, trained on the search's train and "
        "val halves, tested on the held-out test split.",
    )
    p.add_argument(
        "--genotype", metavar="NAME|FILE|RUN_DIR", help="the architecture (default: DARTS_V2)"
    )
    p.add_argument(
        "--config",
        metavar="NAME|FILE.yaml",
        help="a shipped train config by name (see `gradnas configs`) or a YAML file; "
        "flags below override its values",
    )
    _data_arguments(p)
    p.add_argument("--epochs", type=int, help="training epochs")
    p.add_argument("--batch-size", type=int, help="batch size")
    p.add_argument("--seed", type=int, help="seed of data split, initialisation and data order")
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: one per core, fewer when other processes load the cores)",
    )
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/train-<time>)")
    p.add_argument("--force", action="store_true", help="reuse a run folder that is not empty")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted training run")
    p.add_argument(
        "--device",
        choices=DEVICES,
        help="auto (a GPU when there is one), cpu or cuda (default: auto)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="under torchrun on GPUs: BatchNorm statistics over the global batch",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, summary lines only")
    p.set_defaults(func=_cmd_train)


def _override(cfg, overrides: dict[tuple[str, ...], object], cls):
    """``cfg`` with the given (section, key) paths replaced where the value is not None, re-validated."""
    data = config_to_dict(cfg)
    for key, value in overrides.items():
        if value is not None:
            section = data
            for part in key[:-1]:
                section = section[part]
            section[key[-1]] = value
    return config_from_dict(data, cls)


def _reject_with_resume(args: argparse.Namespace, flags: dict[str, object]) -> None:
    clashing = [flag for flag, value in flags.items() if value not in (None, False)]
    if clashing:
        raise ConfigError(
            f"--resume continues the run with the config stored in its folder; "
            f"it cannot be combined with {', '.join(clashing)}"
        )


def _cmd_train(args: argparse.Namespace) -> int:
    from .engine.train import run_train

    if args.resume:
        _reject_with_resume(
            args,
            {
                "--genotype": args.genotype,
                "--config": args.config,
                **_data_flags(args),
                "--device": args.device,
                "--sync-bn": args.sync_bn,
                "--epochs": args.epochs,
                "--batch-size": args.batch_size,
                "--seed": args.seed,
                "--threads": args.threads,
                "--out": args.out,
                "--force": args.force,
            },
        )
        run_train(TrainConfig(), args.resume, progress=not args.no_progress, resume=True)
        return 0
    cfg = (
        load_config(resolve_config(args.config, "train"), TrainConfig)
        if args.config
        else TrainConfig()
    )
    cfg = _override(
        cfg,
        {
            ("genotype",): args.genotype,
            ("epochs",): args.epochs,
            ("seed",): args.seed,
            ("threads",): args.threads,
            ("device",): args.device,
            ("sync_bn",): args.sync_bn,
            **_data_overrides(args),
        },
        TrainConfig,
    )
    out = args.out if args.out is not None else default_out("train")
    inputs = [resolve_config(args.config, "train")] if args.config else []
    run_train(cfg, out, force=args.force, progress=not args.no_progress, inputs=inputs)
    return 0


def default_out(kind: str) -> str:
    """``runs/<kind>-<time>``; under torchrun the ranks could read different
    clocks, so there the run folder must be named."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "under torchrun, name the run folder with --out (each process must use the same one)"
        )
    return time.strftime(f"runs/{kind}-%Y%m%d-%H%M%S")


def _plot_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a run's alphas, cells and curves, or any genotype's cells",
        description="Write PNG and SVG plots into a search run folder: softmax weights of every op "
        "on every edge over the epochs (derived choices marked), the normal and "
        "reduction cells as diagrams (Graphviz when 'dot' is installed, matplotlib "
        "otherwise), and loss/accuracy curves. With --genotype, draw that genotype's "
        "cells into --out.",
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a gradnas search run folder")
    p.add_argument(
        "--genotype",
        metavar="NAME|FILE",
        help="draw this genotype (e.g. DARTS_V2) instead of a run",
    )
    p.add_argument(
        "--out", metavar="DIR", help="folder for --genotype plots (default: plots-<name>)"
    )
    p.add_argument(
        "--renderer",
        choices=("auto", "graphviz", "matplotlib"),
        default="auto",
        help="cell diagram renderer (default: Graphviz when installed)",
    )
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from .architectures import plot_search_run
    from .engine.train import resolve_genotype
    from .plots import plot_genotype

    if (args.run_dir is None) == (args.genotype is None):
        raise ConfigError("give either a RUN_DIR or --genotype NAME|FILE")
    try:
        if args.genotype:
            genotype = resolve_genotype(args.genotype)
            out = Path(args.out or f"plots-{Path(args.genotype).stem}")
            if out.exists() and not out.is_dir():
                raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
            paths = plot_genotype(genotype, out, renderer=args.renderer)
        else:
            paths = plot_search_run(Path(args.run_dir), renderer=args.renderer)
    # unreadable run files, a failing dot: one line, no traceback
    except (ValueError, RuntimeError) as err:
        if isinstance(err, GenotypeError):
            raise
        raise ConfigError(str(err)) from None
    for path in paths:
        print(path)
    return 0


def _inspect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="weights and multiply-adds of a genotype's network",
        description="Print the weight count (without and with the auxiliary head) and the "
        "multiply-adds (convolutions and linear layers, torch.utils.flop_counter, "
        "MACs = FLOPs / 2) of a genotype's derived network at DARTS' evaluation "
        "sizes unless overridden.",
    )
    p.add_argument(
        "genotype",
        metavar="GENOTYPE",
        help="published name (e.g. DARTS_V2), genotype file or run folder",
    )
    p.add_argument(
        "--network",
        choices=("cifar", "imagenet"),
        default="cifar",
        help="NetworkCIFAR (C=36, 20 cells, 32x32) or NetworkImageNet (C=48, 14 cells, 224x224)",
    )
    p.add_argument("--C", type=int, help="channels of the first cells")
    p.add_argument("--layers", type=int, help="cells")
    p.add_argument("--num-classes", type=int, help="classifier outputs")
    p.add_argument("--in-channels", type=int, help="image channels")
    p.add_argument("--image-size", type=int, help="input side in pixels")
    p.set_defaults(func=_cmd_inspect)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .architectures import resolve_architecture
    from .genotype import Genotype
    from .inspect import describe_genotype

    resolved = resolve_architecture(args.genotype)
    genotype = resolved.arch
    if not isinstance(genotype, Genotype):  # another space: its fixed network as the run built it
        return _inspect_fixed(args, resolved)
    try:
        info = describe_genotype(
            genotype,
            args.network,
            C=args.C,
            layers=args.layers,
            num_classes=args.num_classes,
            in_channels=args.in_channels,
            image_size=args.image_size,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    print(f"genotype      {genotype}")
    print(
        f"network       {info['network']}: C={info['C']}, "
        f"{info['layers']} cells, {info['num_classes']} classes, "
        f"{info['in_channels']}x{info['image_size']}x{info['image_size']} input"
    )
    print(
        f"weights       {info['params']:,} ({info['params_with_auxiliary']:,} with the auxiliary head)"
    )
    print(f"multiply-adds {info['macs']:,}")
    return 0


def _inspect_fixed(args: argparse.Namespace, resolved) -> int:
    """Weights and multiply-adds of the fixed network of a non-DARTS architecture, at the
    shapes its run folder recorded (or --in-channels / --num-classes / --image-size)."""
    from .inspect import count_macs, count_parameters
    from .spaces.contract import SpaceError

    shape = resolved.shapes.image_shape if resolved.shapes is not None else (3, 32, 32)
    in_channels = args.in_channels or shape[0]
    size = (args.image_size, args.image_size) if args.image_size else tuple(shape[1:])
    num_classes = args.num_classes or (
        resolved.shapes.num_classes if resolved.shapes is not None else 10
    )
    try:
        model = resolved.space.fixed_network(resolved.arch, in_channels, num_classes)
        macs = count_macs(model.eval(), (in_channels, *size))
    except (SpaceError, ValueError, RuntimeError) as err:
        raise ConfigError(str(err)) from None
    print(f"architecture  {resolved.arch}")
    print(
        f"network       {resolved.space.name} {resolved.space.fixed_size()}, {num_classes} classes, "
        f"{in_channels}x{size[0]}x{size[1]} input"
    )
    print(f"weights       {count_parameters(model):,}")
    print(f"multiply-adds {macs:,}")
    return 0


def _export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained network for deployment (ONNX or torch.export)",
        description="Export the network of a `gradnas train` run folder, in eval mode, as ONNX "
        "(torch.onnx, checked against onnxruntime) or as a torch.export program (.pt2). "
        "The batch dimension is dynamic.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a gradnas train run folder")
    p.add_argument(
        "--format", choices=("onnx", "pt2"), default="onnx", help="output format (default: onnx)"
    )
    p.add_argument(
        "--out", metavar="FILE", help="output file (default: RUN_DIR/model.onnx or model.pt2)"
    )
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .engine.data import load_data, read_data_info
    from .engine.train import load_trained, trained_shapes
    from .export import ExportError, export_onnx, export_pt2, max_abs_difference_onnx

    model, cfg = load_trained(args.run_dir)
    shapes = trained_shapes(args.run_dir)  # recorded by the run: no need to load the data set
    if shapes is not None:
        example = torch.zeros(1, *shapes.image_shape)
    else:  # a run folder from before space.json: data.json, or else ask the data
        info = read_data_info(Path(args.run_dir))
        if info is None:
            info = load_data(cfg.data, cfg.seed).describe()
        size = info["image_size"]
        example = torch.zeros(1, info["in_channels"], size, size)
    out = Path(args.out or Path(args.run_dir) / f"model.{args.format}")
    try:
        if args.format == "onnx":
            opset = export_onnx(model, example, out)
            x = torch.randn(4, *example.shape[1:])
            print(
                f"wrote {out} (ONNX opset {opset}); max abs difference to PyTorch on a random batch: "
                f"{max_abs_difference_onnx(out, model, x):.2e}"
            )
        else:
            export_pt2(model, example, out)
            print(f"wrote {out} (torch.export program; load with torch.export.load)")
    except ExportError as err:
        raise ConfigError(str(err)) from None
    return 0


def _configs_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "configs",
        help="list the published configs shipped with gradnas",
        description="List the configs shipped inside the package, by command, with what each "
        "reproduces. Pass a name to --config (e.g. `gradnas search --config darts-cifar10`); "
        "--print NAME shows one, to copy and edit.",
    )
    p.add_argument(
        "--print",
        metavar="NAME",
        dest="show",
        help="print the YAML of this config (a search config, else a train config)",
    )
    p.set_defaults(func=_cmd_configs)


def _cmd_configs(args: argparse.Namespace) -> int:
    if args.show:
        for kind in ("search", "train"):
            path = shipped_configs(kind).get(args.show)
            if path is not None:
                print(path.read_text(encoding="utf-8"), end="")
                return 0
        raise ConfigError(f"no shipped config named {args.show!r} (see `gradnas configs`)")
    for kind in ("search", "train"):
        print(f"gradnas {kind} --config NAME:")
        for name, path in shipped_configs(kind).items():
            print(f"  {name:28s} {describe(path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradnas", description="Differentiable neural architecture search."
    )
    parser.add_argument("--version", action="version", version=f"gradnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _search_parser(sub)
    _train_parser(sub)
    _plot_parser(sub)
    _inspect_parser(sub)
    _export_parser(sub)
    _configs_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    completed = False
    try:
        code = args.func(args)
        completed = True
        return code
    except GradnasError as err:
        print(f"gradnas: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gradnas configs | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except Interrupted as err:
        print(f"gradnas: {err}", file=sys.stderr)
        return 128 + err.signum
    except NonFiniteError as err:
        print(f"gradnas: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a file system that refuses a read or write: one line, the path
        where = f" {err.filename!r}" if err.filename else ""
        print(f"gradnas: error: {err.strerror or err}:{where}", file=sys.stderr)
        return 2
    finally:
        if "torch.distributed" in sys.modules:  # leave torchrun's process group, if joined
            from .parallel import finish

            finish(completed)


if __name__ == "__main__":
    sys.exit(main())
