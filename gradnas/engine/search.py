"""The search engine: config in, run folder with the found architecture out.

``run_search(cfg, out_dir)`` builds the data, the search space, the supernet,
mutator and algorithm of a :class:`~gradnas.config.SearchConfig`, runs
``cfg.epochs`` epochs of ``algorithm.step(train_batch, val_batch)`` through
the one run loop (:mod:`.loop`), then the algorithm's final architecture
stage (SPOS' evolution, random search's trials), and writes into the run
folder:

- ``config.yaml``: the resolved config that produced the run;
- ``space.json``: the space (its name or factory reference) and the data's
  shapes, so ``--resume``, ``gradnas train RUN_DIR`` and ``gradnas export``
  build it again without reloading the data;
- ``data.json``: channels, image size, classes, normalisation and split sizes of the data;
- ``metrics.csv``: one row per epoch;
- ``alphas.json``: softmax weights of every decision at the start and after each epoch;
- the architecture files of the space (``genotype.json`` / ``genotype.txt``
  for DARTS cells, ``arch.json`` / ``arch.txt`` for NAS-Bench-201 cells and
  custom spaces);
- the plots the space draws (unless ``plots: false``);
- ``checkpoint.pt``: everything a resume needs (weights, alphas, optimizers,
  scheduler, algorithm schedule, data position, RNG states), with the one
  before kept as ``checkpoint.prev.pt``.

The engine asks its parts through their contracts
(:class:`~gradnas.spaces.contract.SearchSpace`,
:class:`~gradnas.algorithms.contract.Algorithm`); it names no method and no
space. Under ``torchrun`` every rank runs the loop on its share of each
batch (:mod:`gradnas.parallel`); only rank 0 writes the run folder and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .. import parallel
from ..algorithms.contract import Algorithm, DataParallel, EpochChange, FinalStage
from ..config import SearchConfig, config_to_dict, dump_config
from ..data import InfiniteStream, make_loader
from ..data.sources import Splits
from ..methods import Optimizers, build_algorithm, build_optimizers, build_supernet, search_space
from ..spaces.contract import SearchSpace, SpaceMutator
from .command import resume_command
from .common import (
    Progress,
    check_finite,
    check_finite_weights,
    check_same_position,
    check_thread_count,
    csv_text,
    evaluate,
    flush_denormals,
    quiet,
    resume_position,
    seed_everything,
    to_device,
)
from .data import check_batch_fits, load_data, loader_options, write_data_info
from .files import save_checkpoint, write_text
from .interrupt import StopRequest
from .loop import run_epochs
from .resume import check_progress, restore_first_fitting, resume_candidates
from .rng import get_rng_state, set_rng_state
from .run_folder import RunFolder, hint_on_second_interrupt, is_main_process
from .run_record import Shapes, write_space_record
from .schedule import move_scheduler
from .summary import choices_changed, decisiveness
from .tensorboard import TensorboardLog
from .threads import choose_threads
from .trials import TrialRunner

CHECKPOINT_FORMAT = "gradnas-search-1"
CPU = torch.device("cpu")
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "weight_lr",
    "tau",
    "seconds",
)


@dataclass
class SearchSetup:
    """Everything a search run holds, built from one config."""

    space: SearchSpace
    supernet: nn.Module
    mutator: SpaceMutator  # the DARTS rule's, or the OneShotMutator of one-path methods
    weight_optimizer: torch.optim.Optimizer
    arch_optimizer: torch.optim.Optimizer | None  # None without alphas
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: torch.utils.data.DataLoader[Any]
    val_loader: torch.utils.data.DataLoader[Any]
    val_stream: InfiniteStream
    shapes: Shapes
    cfg: SearchConfig
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS
    device: torch.device = CPU
    data: Splits | None = None  # what data.json records
    placed: Algorithm | None = field(default=None, repr=False)

    @property
    def algorithm(self) -> Algorithm:
        if self.placed is None:
            raise RuntimeError("place_on_device(setup, cfg) builds the algorithm")
        return self.placed

    @property
    def in_channels(self) -> int:
        return self.shapes.in_channels

    @property
    def num_classes(self) -> int:
        return self.shapes.num_classes

    @property
    def alphas(self) -> dict[str, torch.Tensor]:
        return dict(self.mutator.arch_params.items())


@dataclass
class SearchResult:
    genotype: Any  # the space's architecture value (a Genotype for DARTS cells)
    history: list[dict[str, float]]
    out_dir: Path

    @property
    def arch(self) -> Any:
        return self.genotype


def build_search(
    cfg: SearchConfig,
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS,
    device: torch.device = CPU,
    datasets: tuple[Dataset[Any], Dataset[Any]] | None = None,
    splits: Splits | None = None,
    factory: Any = None,
) -> SearchSetup:
    """Data, space, supernet, mutator and optimizers for ``cfg``, seeded.

    Every rank seeds alike, so all build the same supernet and alphas and
    draw the same architecture samples; each reads its share of a batch
    (``data.batch_size`` is the batch of one rank). The supernet is still on
    the CPU and unwrapped: :func:`place_on_device` moves it and builds the
    algorithm around it. ``datasets=(train, test)`` are a caller's own data
    sets (``data.name: datasets``, split as the config says); ``splits`` (a
    :class:`~gradnas.data.sources.Splits`) replaces the config's data
    altogether and ``factory`` the factory ``cfg.space`` names (the Python
    API's own objects).
    """
    seed_everything(cfg.seed)
    if splits is None:
        splits = load_data(cfg.data, cfg.seed, datasets)
    check_batch_fits(splits, cfg.data.batch_size, ("train", "val"))
    shapes = Shapes.of(splits)
    space = search_space(cfg, shapes.in_channels, shapes.num_classes, shapes.image_shape, factory)
    supernet, mutator = build_supernet(cfg, shapes.in_channels, shapes.num_classes, space)
    optimizers = build_optimizers(cfg, supernet, mutator)
    batch, rank, world = cfg.data.batch_size, replicas.rank, replicas.world_size
    opts = loader_options(cfg.data, device) | {"augment": splits.augmentation}
    train_loader = make_loader(
        splits.train, batch, shuffle=True, seed=cfg.seed, rank=rank, world_size=world, **opts
    )
    val_loader = make_loader(
        Subset(splits.val, parallel.shard(len(splits.val), replicas)),
        batch,
        shuffle=False,
        seed=cfg.seed,
        **opts,
    )
    # DARTS reads the validation half as a stream alongside the training half.
    val_stream = InfiniteStream(
        make_loader(
            splits.val, batch, shuffle=True, seed=cfg.seed + 1, rank=rank, world_size=world, **opts
        )
    )
    return SearchSetup(
        space,
        supernet,
        mutator,
        optimizers.weight,
        optimizers.arch,
        optimizers.scheduler,
        train_loader,
        val_loader,
        val_stream,
        shapes,
        cfg,
        replicas,
        device,
        splits,
    )


def place_on_device(setup: SearchSetup, cfg: SearchConfig) -> None:
    """Move supernet and alphas to the setup's device and build the algorithm;
    data-parallel, the algorithm wraps its forward in DDP (optionally with
    SyncBatchNorm). DDP fixes the parameters' dtype and device, so this
    comes after any other change to them."""
    replicas, device = setup.replicas, setup.device
    if device.type != "cpu":
        setup.supernet.to(device)
        setup.mutator.to(device)
    if replicas.active and cfg.sync_bn:
        parallel.convert_sync_batchnorm(setup.supernet, device)

    def wrap(module: nn.Module, find_unused: bool = False) -> nn.Module:
        return parallel.wrap(module, replicas, device, find_unused=find_unused)

    optimizers = Optimizers(setup.weight_optimizer, setup.arch_optimizer, setup.scheduler)
    setup.placed = build_algorithm(
        cfg, setup.supernet, setup.mutator, optimizers, DataParallel(replicas, wrap)
    )


def alpha_snapshot(
    mutator: SpaceMutator, choices: dict[str, list[str]] | None = None
) -> dict[str, list[float]]:
    """softmax(alpha) of every decision; with ``choices`` (each decision's choices as
    built) a choice pruned since (DrNAS' progressive search) is listed with 0."""
    snapshot = {}
    for space_id, probs in mutator.arch_probs().items():
        values = [round(p, 6) for p in probs.tolist()]
        if choices is not None:
            names = mutator.search_spaces[space_id][0].full_choice_names
            by_name = dict(zip(names, values, strict=True))
            values = [by_name.get(name, 0.0) for name in choices[space_id]]
        snapshot[space_id] = values
    return snapshot


def adopt(
    setup: SearchSetup, change: EpochChange, log: Callable[[str], None] | None = None
) -> None:
    """Use the optimizers a method's schedule rebuilt (DrNAS' progressive stages
    prune and widen the supernet), and move the learning-rate schedule onto
    the new weight optimizer."""
    if change.arch_optimizer is not None:
        setup.arch_optimizer = change.arch_optimizer
    if change.weight_optimizer is not None:
        cosine = cast(
            torch.optim.lr_scheduler.CosineAnnealingLR, setup.scheduler
        )  # methods.py builds it
        setup.scheduler = move_scheduler(cosine, change.weight_optimizer)
        setup.weight_optimizer = change.weight_optimizer
    if change.changed and log is not None:
        log(
            f"  the supernet changed: {sum(p.numel() for p in setup.supernet.parameters()):,} "
            f"weights, optimizers rebuilt with their state"
        )


def derive(setup: SearchSetup) -> Any | None:
    """The architecture the current alphas give; None without alphas (one-path methods)."""
    if not setup.alphas:
        return None
    return setup.space.to_arch(setup.supernet, setup.mutator.search_subnet())


def checkpoint_state(setup: SearchSetup, cfg: SearchConfig, progress: Progress) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config_to_dict(cfg),
        "progress": progress.to_state(),
        "supernet": setup.supernet.state_dict(),
        "mutator": setup.mutator.state_dict(),
        "weight_optimizer": setup.weight_optimizer.state_dict(),
        "arch_optimizer": setup.arch_optimizer.state_dict()
        if setup.arch_optimizer is not None
        else {},
        "scheduler": setup.scheduler.state_dict(),
        "algorithm": setup.algorithm.state_dict(),
        "val_stream": setup.val_stream.state(),
        "rng": get_rng_state(),  # the same on every rank: they draw the same architecture samples
        "threads": torch.get_num_threads(),
        "world_size": setup.replicas.world_size,
    }


def restore_checkpoint(
    setup: SearchSetup, state: dict[str, Any], log: Callable[[str], None]
) -> Progress:
    """Load every module, optimizer and stream position of ``state`` into ``setup``.

    The algorithm's state comes first, and once: it gives the supernet the
    shape it had at the checkpoint (DrNAS' pruned ops and widened channels)
    before the state dicts of that shape are loaded.
    """
    adopt(setup, setup.algorithm.load_state_dict(state["algorithm"]))
    setup.supernet.load_state_dict(state["supernet"])
    setup.mutator.load_state_dict(state["mutator"])
    setup.weight_optimizer.load_state_dict(state["weight_optimizer"])
    if setup.arch_optimizer is not None:
        setup.arch_optimizer.load_state_dict(state["arch_optimizer"])
    setup.scheduler.load_state_dict(state["scheduler"])
    setup.val_stream.restore(state["val_stream"])
    set_rng_state(state["rng"])
    check_thread_count(state["threads"], log)
    check_world_size(state.get("world_size", 1), setup.replicas.world_size, log)
    return Progress.from_state(state["progress"])


def check_world_size(saved: int, now: int, log: Callable[[str], None]) -> None:
    if saved != now:
        log(
            f"warning: the run was checkpointed with {saved} process(es) and resumes with "
            f"{now}; the batches differ from an uninterrupted run from here on (torchrun "
            f"--nproc-per-node {saved} resumes exactly)"
        )


def write_arch(space: SearchSpace, arch: Any | None, out: Path) -> list[str]:
    """Write the architecture files of ``space``; None writes nothing. Returns their names."""
    if arch is None:
        return []
    texts = space.arch_texts(arch)
    for name, text in texts.items():
        write_text(out / name, text)
    return list(texts)


@dataclass
class SearchJob:
    """A search as a :class:`~.loop.Job` of the one run loop."""

    setup: SearchSetup
    cfg: SearchConfig
    out: Path
    log: Callable[[str], None]
    space_choices: dict[str, list[str]]
    board: TensorboardLog | None
    arch: Any = None
    weight_lr: float = 0.0

    @property
    def epochs(self) -> int:
        return self.cfg.epochs

    @property
    def train_loader(self) -> torch.utils.data.DataLoader[Any]:
        return self.setup.train_loader

    @property
    def checkpoint_every(self) -> int:
        return self.cfg.checkpoint_every

    @property
    def resume_hint(self) -> str:
        return resume_command("search", self.out)

    def start_epoch(self, epoch: int, fresh: bool) -> None:
        if fresh:  # resumed mid-epoch, the schedule's state came with the checkpoint
            adopt(self.setup, self.setup.algorithm.on_epoch_start(epoch, self.cfg.epochs), self.log)

    def step(self, batch: Any) -> dict[str, float]:
        setup, device = self.setup, self.setup.device
        self.weight_lr = setup.weight_optimizer.param_groups[0]["lr"]
        algorithm = setup.algorithm
        val = None
        if algorithm.reads_val_batch:
            xv, yv = to_device(next(setup.val_stream), device)
            val = (xv, yv)
        x, y = to_device(batch, device)
        return algorithm.step((x, y), val)

    def check(self, metrics: dict[str, float], run: Progress) -> None:
        alphas = self.setup.alphas
        check_finite(
            metrics, run.epoch, run.step, ((f"alpha {sid}", a) for sid, a in alphas.items())
        )
        if self.board is not None:
            self.board.step(metrics, run.epoch * len(self.setup.train_loader) + run.step)

    def end_epoch(self, epoch: int, run: Progress, started: float) -> None:
        setup = self.setup
        setup.scheduler.step()
        setup.replicas.broadcast_buffers_(setup.supernet)
        val_loss, val_acc = evaluate(setup.supernet, setup.val_loader, setup.replicas)
        self.arch = derive(setup)
        if setup.replicas.is_main:
            write_arch(setup.space, self.arch, self.out)
        train = {key: value / len(setup.train_loader) for key, value in run.sums.items()}
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": round(train["train_loss"], 6),
            "train_acc": round(train["train_acc"], 6),
            "val_loss": round(val_loss, 6),
            "val_acc": round(val_acc, 6),
            "weight_lr": self.weight_lr,
            "tau": setup.algorithm.logged().get("tau", ""),  # Gumbel methods' temperature
            "seconds": round(time.perf_counter() - started, 3),
        }
        run.history.append(row)
        if self.board is not None:
            self.board.epoch(row, setup.alphas, epoch + 1)
        run.alpha_history.append(
            {"epoch": epoch + 1, "probs": alpha_snapshot(setup.mutator, self.space_choices)}
        )

    def save(self, run: Progress) -> None:
        """Checkpoint (rank 0), unless a weight went non-finite: then the last good
        checkpoint stays."""
        setup = self.setup
        check_finite_weights(
            setup.supernet, run.epoch, run.step, (setup.weight_optimizer, setup.arch_optimizer)
        )
        setup.replicas.broadcast_buffers_(setup.supernet)
        if setup.replicas.is_main:
            save_checkpoint(self.out / "checkpoint.pt", checkpoint_state(setup, self.cfg, run))

    def after_epoch(self, run: Progress) -> None:
        setup, cfg, out, row = self.setup, self.cfg, self.out, run.history[-1]
        main = setup.replicas.is_main
        if main:
            write_epoch_files(out, run, self.space_choices)
        arch = self.arch
        # One line within 120 columns; the architecture itself is in the space's files
        # (rewritten every epoch) and in the end-of-search summary.
        changes = ""
        if len(run.alpha_history) > 1 and run.alpha_history[-1]["probs"]:
            changed, decisions = choices_changed(
                self.space_choices, run.alpha_history[-2]["probs"], run.alpha_history[-1]["probs"]
            )
            changes = f"  {changed}/{decisions} decisions changed"
        self.log(
            f"epoch {row['epoch']}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  "
            f"train_acc {row['train_acc']:.4f}  val_acc {row['val_acc']:.4f}  "
            f"{row['seconds']:.1f}s{changes}"
        )
        warning = setup.space.warning(arch) if arch is not None else None
        if warning:
            self.log(f"  {warning}")
        if (
            main
            and cfg.plots
            and cfg.plot_every
            and run.epoch % cfg.plot_every == 0
            and run.epoch < cfg.epochs
            and arch is not None
        ):
            setup.space.draw_plots(out, arch, run.history, bool(setup.alphas))


def write_epoch_files(out: Path, run: Progress, space_choices: dict[str, list[str]]) -> None:
    """``metrics.csv`` and ``alphas.json`` from the run's history (all a checkpoint holds)."""
    write_text(out / "metrics.csv", csv_text(run.history, METRIC_COLUMNS))
    write_text(
        out / "alphas.json",
        json.dumps({"choices": space_choices, "history": run.alpha_history}),
    )


def _checkpoint(
    setup: SearchSetup, cfg: SearchConfig, run: Progress, out: Path, extra: dict[str, Any]
) -> None:
    """A checkpoint with the random-search trials' ``extra`` state, under the same
    finiteness guard as every other checkpoint."""
    check_finite_weights(
        setup.supernet, run.epoch, run.step, (setup.weight_optimizer, setup.arch_optimizer)
    )
    if setup.replicas.is_main:
        save_checkpoint(out / "checkpoint.pt", {**checkpoint_state(setup, cfg, run), **extra})


def run_search(
    cfg: SearchConfig,
    out_dir: str | Path,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    resume: bool = False,
    datasets: tuple[Dataset[Any], Dataset[Any]] | None = None,
    inputs: Sequence[str | Path] = (),
    splits: Splits | None = None,
    factory: Any = None,
) -> SearchResult:
    """Run a whole search and write its run folder (see the module docstring).

    ``datasets=(train, test)`` searches on your own ``Dataset`` objects (with
    ``cfg.data.name = "datasets"``); ``splits`` and ``factory`` are the Python
    API's ready splits and space factory. A resume needs them passed again.

    With ``resume=True``, ``out_dir`` is an existing run folder and ``cfg`` is
    ignored: the run continues from its last checkpoint with the config
    stored there, and ends bit-identical to an uninterrupted run on the same
    machine, thread count and number of processes.

    The run holds the folder's lock (:mod:`gradnas.engine.run_folder`) from
    start to end; ``inputs`` are files it reads, which ``force`` never removes.

    Started by ``torchrun`` with several processes, this runs data-parallel
    (see the module docstring); on a resume every rank reads the checkpoint,
    so on several machines the run folder must be on a shared file system.
    """
    with RunFolder(out_dir) as folder, hint_on_second_interrupt(folder, "search"):
        return _run_search(
            folder, cfg, force, progress, log, resume, inputs, datasets, splits, factory
        )


def _run_search(
    folder: RunFolder,
    cfg: SearchConfig,
    force: bool,
    progress: bool,
    log: Callable[[str], None],
    resume: bool,
    inputs: Sequence[str | Path],
    datasets: tuple[Dataset[Any], Dataset[Any]] | None,
    splits: Splits | None,
    factory: Any,
) -> SearchResult:
    out = folder.path
    candidates: list[tuple[Path, dict[str, Any]]] = []
    if resume:
        if is_main_process():
            folder.claim_existing()
        cfg, candidates = resume_candidates(out, CHECKPOINT_FORMAT, SearchConfig, log)
    flush_denormals()
    choose_threads(cfg.threads, log)
    replicas, device = parallel.start(cfg.device)
    if not replicas.is_main:
        log, progress = quiet, False

    def build() -> SearchSetup:
        # Bad data, a bad space or a method the space cannot run fail here, before any write.
        setup = build_search(cfg, replicas, device, datasets, splits, factory)
        place_on_device(setup, cfg)
        return setup

    setup = build()
    if not resume and replicas.is_main:
        folder.claim_new(force, "search", inputs)
    alphas = setup.alphas
    space_choices = {
        sid: list(members[0].full_choice_names)
        for sid, members in setup.mutator.search_spaces.items()
        if sid in alphas
    }
    state: dict[str, Any] | None = None
    if not candidates:
        if resume:
            log(f"resuming {out}: no checkpoint yet, starting the run from its config.yaml")
        if replicas.is_main:
            write_text(out / "config.yaml", dump_config(cfg))
            write_space_record(out, setup.space, setup.shapes)
            if setup.data is not None:
                write_data_info(out, setup.data)
        run = Progress(alpha_history=[{"epoch": 0, "probs": alpha_snapshot(setup.mutator)}])
    else:
        chosen: dict[str, Any] = {}

        def restore(setup: SearchSetup, state: dict[str, Any]) -> Progress:
            run = restore_checkpoint(setup, state, log)
            check_progress(run, cfg.epochs, len(setup.train_loader))
            chosen["state"] = state
            return run

        setup, run = restore_first_fitting(candidates, setup, build, restore, log)
        state = chosen["state"]
        alphas = setup.alphas
        check_same_position(replicas, run, out)
        log(resume_position(out, run, cfg.epochs))
    algorithm, space = setup.algorithm, setup.space
    on = f" on {replicas.world_size} processes ({device.type})" if replicas.active else ""
    log(
        f"search: {cfg.algorithm} on {cfg.data.name}{on}, "
        f"{cfg.epochs if algorithm.trains_supernet else 0} epochs, "
        f"{sum(p.numel() for p in setup.supernet.parameters()):,} weights, "
        f"{sum(a.numel() for a in alphas.values())} alphas -> {out}"
    )
    board = TensorboardLog(out) if cfg.tensorboard and replicas.is_main else None
    job = SearchJob(setup, cfg, out, log, space_choices, board)
    trials = TrialRunner(
        cfg,
        setup.space,
        setup.shapes,
        setup.train_loader,
        setup.val_loader,
        replicas,
        device,
        out,
        log,
        saved=state.get("trials", []) if state is not None else [],
        checkpoint=lambda extra: _checkpoint(setup, cfg, run, out, extra),
    )
    try:
        with StopRequest() as stop:
            if algorithm.trains_supernet:
                run_epochs(job, run, stop, progress and replicas.is_main, replicas)
            stage = FinalStage(
                paths=space.path_ops(),
                train_loader=setup.train_loader,
                val_loader=setup.val_loader,
                replicas=replicas,
                seed=cfg.seed,
                log=log,
                train_fixed=lambda arch, trial: trials.train(arch, trial, stop, run),
            )
            arch = algorithm.final_architecture(stage)
    finally:
        if board is not None:
            board.close()
    if arch is None:
        arch = derive(setup)
    if not replicas.is_main:
        return SearchResult(genotype=arch, history=run.history, out_dir=out)
    if algorithm.trains_supernet:  # again: a run resumed after its last checkpoint rewrites them
        write_epoch_files(out, run, space_choices)
    written = ["config.yaml", "space.json", "data.json"]
    if algorithm.trains_supernet:
        written += ["metrics.csv", "alphas.json"]
    written += write_arch(space, arch, out)
    written += [*trials.files(), "checkpoint.pt"]
    if cfg.plots:
        written += [p.name for p in space.draw_plots(out, arch, run.history, bool(alphas))]
    if run.history:
        best = max(run.history, key=lambda row: row["val_acc"])
        seconds = sum(row["seconds"] for row in run.history)
        log(f"search finished in {seconds:.0f}s")
        log(
            f"  best val acc   {best['val_acc']:.4f} (epoch {best['epoch']}), "
            f"final {run.history[-1]['val_acc']:.4f}"
        )
    trials.summary()
    log(f"  genotype       {arch}")
    if alphas:
        remaining = {
            sid: len(members[0].full_choice_names)
            for sid, members in setup.mutator.search_spaces.items()
        }
        decided = decisiveness(
            space_choices,
            run.alpha_history[0]["probs"],
            run.alpha_history[-1]["probs"],
            setup.mutator.search_subnet(),
            remaining=remaining,
        )
        log(
            f"  decided        derived ops' mean softmax weight "
            f"{decided['derived_mean_weight']:.3f} ({decided['times_uniform']:.2f}x uniform); "
            f"{decided['changed']} of {decided['decisions']} edges changed their strongest op "
            f"since the start"
        )
    derived = space.fixed_network(arch, setup.in_channels, setup.num_classes)
    log(
        f"  derived net    {sum(p.numel() for p in derived.parameters()):,} weights "
        f"{space.fixed_size()}"
    )
    warning = space.warning(arch)
    if warning:
        log(f"  {warning}")
    log(f"  files          {out}/: {' '.join(written)}")
    return SearchResult(genotype=arch, history=run.history, out_dir=out)
