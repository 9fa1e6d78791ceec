"""The search loop: config in, run folder with the found architecture out.

``run_search(cfg, out_dir)`` builds the data, supernet, mutator and algorithm
from a :class:`~gradnas.config.SearchConfig`, runs ``cfg.epochs`` epochs of
``algorithm.step(train_batch, val_batch)``, and writes into the run folder:

- ``config.yaml``: the resolved config that produced the run;
- ``data.json``: channels, image size, classes, normalisation and split sizes of the data;
- ``metrics.csv``: one row per epoch;
- ``alphas.json``: softmax weights of every decision at the start and after each epoch;
- ``genotype.json`` / ``genotype.txt``: the derived architecture as JSON and
  in the DARTS notation (NAS-Bench-201 space: ``arch.json`` / ``arch.txt``,
  the latter the benchmark's arch string);
- ``alphas_*.png|svg``, ``cell_*.png|svg|dot``, ``curves.png|svg``: the
  plots of :func:`gradnas.plots.plot_run` (unless ``plots: false``);
- ``checkpoint.pt``: everything a resume needs (weights, alphas, optimizers,
  scheduler, algorithm schedule, data position, RNG states), with the one
  before kept as ``checkpoint.prev.pt``.

Under ``torchrun`` every rank runs this loop on its share of each batch
(:mod:`gradnas.parallel`); the ranks hold identical weights and alphas after
every step, and only rank 0 writes the run folder and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .. import parallel
from ..algorithms.base import use_data_parallel
from ..algorithms.spos import evolution_search, path_accuracy
from ..config import (
    SearchConfig,
    TrainConfig,
    config_to_dict,
    dump_config,
)
from ..data import InfiniteStream, make_loader
from ..data.sources import Splits
from ..genotype import Genotype
from ..genotype_sampling import crossover_genotypes, mutate_genotype, sample_genotype
from ..mutators import DiffMutator
from ..plots import collapse_warning, plot_curves, plot_genotype, plot_run
from ..spaces.darts import NetworkCIFAR
from ..spaces.nb201 import NB201Arch, NB201Network
from .builders import build_search_parts, derive, move_scheduler
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
    run_epoch_steps,
    seed_everything,
    stop_after_epoch,
    to_device,
)
from .data import check_batch_fits, load_data, loader_options, write_data_info
from .files import save_checkpoint, write_text
from .interrupt import StopRequest
from .resume import check_progress, restore_first_fitting, resume_candidates
from .rng import get_rng_state, set_rng_state
from .run_folder import RunFolder, hint_on_second_interrupt, is_main_process
from .summary import choices_changed, decisiveness
from .tensorboard import TensorboardLog
from .threads import choose_threads

CHECKPOINT_FORMAT = "gradnas-search-1"
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

    supernet: nn.Module  # DartsSearchNetwork or NB201SearchNetwork
    mutator: DiffMutator
    algorithm: object  # one of gradnas.algorithms: step / on_epoch_start / state_dict
    weight_optimizer: torch.optim.Optimizer
    arch_optimizer: torch.optim.Optimizer | None  # None for SPOS
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    val_stream: InfiniteStream
    in_channels: int
    num_classes: int
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS
    device: torch.device = torch.device("cpu")
    data: Splits | None = None  # what data.json records


@dataclass
class SearchResult:
    genotype: Genotype
    history: list[dict[str, float]]
    out_dir: Path


def build_search(
    cfg: SearchConfig,
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS,
    device: torch.device = torch.device("cpu"),
    datasets: tuple[Dataset, Dataset] | None = None,
) -> SearchSetup:
    """Data, supernet, mutator, optimizers and algorithm for ``cfg``, seeded.

    Every rank seeds alike, so all build the same supernet and alphas and
    draw the same architecture samples; each reads its share of a batch
    (``data.batch_size`` is the batch of one rank). The supernet is still on
    the CPU and unwrapped: :func:`place_on_device` moves and wraps it.
    """
    seed_everything(cfg.seed)
    splits = load_data(cfg.data, cfg.seed, datasets)
    check_batch_fits(splits, cfg.data.batch_size, ("train", "val"))
    parts = build_search_parts(cfg, splits.in_channels, splits.num_classes)
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
    setup = SearchSetup(
        parts.supernet,
        parts.mutator,
        parts.algorithm,
        parts.weight_optimizer,
        parts.arch_optimizer,
        parts.scheduler,
        train_loader,
        val_loader,
        val_stream,
        splits.in_channels,
        splits.num_classes,
        replicas,
        device,
        splits,
    )
    return setup


def place_on_device(setup: SearchSetup, cfg: SearchConfig) -> None:
    """Move supernet and alphas to the setup's device and, data-parallel,
    route the algorithm's weight forward through DDP (optionally with
    SyncBatchNorm). DDP fixes the parameters' dtype and device, so this
    comes after any other change to them."""
    replicas, device = setup.replicas, setup.device
    if device.type != "cpu":
        setup.supernet.to(device)
        setup.mutator.to(device)
    if not replicas.active:
        return
    if cfg.sync_bn:
        parallel.convert_sync_batchnorm(setup.supernet, device)
    # GDAS and SPOS run part of the weights per forward.
    ddp = parallel.wrap(
        setup.supernet, replicas, device, find_unused=cfg.algorithm in ("gdas", "spos")
    )
    use_data_parallel(setup.algorithm, ddp, replicas)


def alpha_snapshot(
    mutator: nn.Module, choices: dict[str, list[str]] | None = None
) -> dict[str, list[float]]:
    """softmax(alpha) of every decision; with ``choices`` (each decision's ops as
    built) an op pruned since (DrNAS' progressive search) is listed with 0."""
    if not isinstance(mutator, DiffMutator):
        return {}  # SPOS: no alphas
    snapshot = {}
    for space_id, probs in mutator.arch_probs().items():
        values = [round(p, 6) for p in probs.tolist()]
        if choices is not None:
            by_name = dict(zip(mutator.search_spaces[space_id][0].full_choice_names, values))
            values = [by_name.get(name, 0.0) for name in choices[space_id]]
        snapshot[space_id] = values
    return snapshot


def adopt_rebuilt_optimizers(setup: SearchSetup, log: Callable[[str], None] | None = None) -> None:
    """Use the optimizers an algorithm rebuilt when its schedule replaced
    parameters (DrNAS' progressive stages prune and widen the supernet), and
    move the learning-rate schedule onto the new weight optimizer."""
    algorithm = setup.algorithm
    if getattr(algorithm, "arch_optimizer", setup.arch_optimizer) is not setup.arch_optimizer:
        setup.arch_optimizer = algorithm.arch_optimizer
    if getattr(algorithm, "weight_optimizer", setup.weight_optimizer) is not setup.weight_optimizer:
        setup.scheduler = move_scheduler(setup.scheduler, algorithm.weight_optimizer)
        setup.weight_optimizer = algorithm.weight_optimizer
        if (
            setup.replicas.active
        ):  # DDP knows the parameters it was built with: wrap the new supernet
            use_data_parallel(
                algorithm,
                parallel.wrap(setup.supernet, setup.replicas, setup.device),
                setup.replicas,
            )
        if log is not None:
            log(
                f"  the supernet changed: {sum(p.numel() for p in setup.supernet.parameters()):,} weights, "
                f"optimizers rebuilt with their state"
            )


def restore_structure(setup: SearchSetup, state: dict) -> None:
    """Give the supernet the shape it had at the checkpoint before its state
    dicts are loaded: the algorithm's state rebuilds what its schedule changed
    (DrNAS' pruned ops and widened partial channels)."""
    setup.algorithm.load_state_dict(state["algorithm"])
    adopt_rebuilt_optimizers(setup)


def checkpoint_state(setup: SearchSetup, cfg: SearchConfig, progress: Progress) -> dict:
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


def restore_checkpoint(setup: SearchSetup, state: dict, log: Callable[[str], None]) -> Progress:
    """Load every module, optimizer and stream position of ``state`` into ``setup``."""
    restore_structure(setup, state)
    setup.supernet.load_state_dict(state["supernet"])
    setup.mutator.load_state_dict(state["mutator"])
    setup.weight_optimizer.load_state_dict(state["weight_optimizer"])
    if setup.arch_optimizer is not None:
        setup.arch_optimizer.load_state_dict(state["arch_optimizer"])
    setup.scheduler.load_state_dict(state["scheduler"])
    setup.algorithm.load_state_dict(state["algorithm"])
    setup.val_stream.restore(state["val_stream"])
    set_rng_state(state["rng"])
    check_thread_count(state["threads"], log)
    check_world_size(state.get("world_size", 1), setup.replicas.world_size, log)
    return Progress.from_state(state["progress"])


def check_world_size(saved: int, now: int, log: Callable[[str], None]) -> None:
    if saved != now:
        log(
            f"warning: the run was checkpointed with {saved} process(es) and resumes with {now}; the batches "
            "differ from an uninterrupted run from here on "
            f"(torchrun --nproc-per-node {saved} resumes exactly)"
        )


def _save(setup: SearchSetup, cfg: SearchConfig, run: Progress, out: Path) -> None:
    """Checkpoint (rank 0), unless a weight went non-finite: then the last good checkpoint stays."""
    check_finite_weights(
        setup.supernet, run.epoch, run.step, (setup.weight_optimizer, setup.arch_optimizer)
    )
    setup.replicas.broadcast_buffers_(setup.supernet)
    if setup.replicas.is_main:
        save_checkpoint(out / "checkpoint.pt", checkpoint_state(setup, cfg, run))


def _search_epochs(
    setup: SearchSetup,
    cfg: SearchConfig,
    run: Progress,
    out: Path,
    progress: bool,
    log: Callable[[str], None],
    space_choices: dict,
    stop: StopRequest,
    board: TensorboardLog | None,
) -> None:
    """Epochs from ``run``'s position to the end, checkpointing as configured."""
    resume_hint = resume_command("search", out)
    alphas = getattr(setup.mutator, "arch_params", {})  # SPOS has none
    steps_per_epoch = len(setup.train_loader)
    main, device = setup.replicas.is_main, setup.device

    def check(metrics):
        check_finite(
            metrics, run.epoch, run.step, ((f"alpha {sid}", a) for sid, a in alphas.items())
        )
        if board is not None:
            board.step(metrics, run.epoch * steps_per_epoch + run.step)

    while run.epoch < cfg.epochs:
        epoch = run.epoch
        start = time.perf_counter()
        if run.step == 0:
            setup.algorithm.on_epoch_start(epoch, cfg.epochs)
            adopt_rebuilt_optimizers(setup, log)
            run.sums = {}
        weight_lr = setup.weight_optimizer.param_groups[0]["lr"]
        run_epoch_steps(
            setup.train_loader,
            lambda batch: setup.algorithm.step(
                to_device(batch, device), to_device(next(setup.val_stream), device)
            ),
            run,
            cfg.epochs,
            cfg.checkpoint_every,
            lambda: _save(setup, cfg, run, out),
            stop,
            resume_hint,
            progress and main,
            check,
            setup.replicas,
        )
        setup.scheduler.step()
        setup.replicas.broadcast_buffers_(setup.supernet)
        val_loss, val_acc = evaluate(setup.supernet, setup.val_loader, setup.replicas)
        genotype = derive(setup.supernet, setup.mutator)
        if main:
            write_genotype(setup, genotype, out)
        train = {key: value / len(setup.train_loader) for key, value in run.sums.items()}
        row = {
            "epoch": epoch + 1,
            "train_loss": round(train["train_loss"], 6),
            "train_acc": round(train["train_acc"], 6),
            "val_loss": round(val_loss, 6),
            "val_acc": round(val_acc, 6),
            "weight_lr": weight_lr,
            "tau": setup.algorithm.state_dict().get("tau", ""),  # Gumbel methods' temperature
            "seconds": round(time.perf_counter() - start, 3),
        }
        run.history.append(row)
        if board is not None:
            board.epoch(row, dict(alphas), epoch + 1)
        run.alpha_history.append(
            {"epoch": epoch + 1, "probs": alpha_snapshot(setup.mutator, space_choices)}
        )
        run.epoch, run.step, run.sums = epoch + 1, 0, {}
        _save(setup, cfg, run, out)
        if main:
            write_epoch_files(out, run, space_choices)
        # One line within 120 columns; the genotype itself is in genotype.json (rewritten
        # every epoch) and in the end-of-search summary.
        arch = ""
        if len(run.alpha_history) > 1 and run.alpha_history[-1]["probs"]:
            changed, decisions = choices_changed(
                space_choices, run.alpha_history[-2]["probs"], run.alpha_history[-1]["probs"]
            )
            arch = f"  {changed}/{decisions} decisions changed"
        log(
            f"epoch {epoch + 1}/{cfg.epochs}  train_loss {train['train_loss']:.4f}  "
            f"train_acc {train['train_acc']:.4f}  val_acc {val_acc:.4f}  {row['seconds']:.1f}s{arch}"
        )
        warning = collapse_warning(genotype) if isinstance(genotype, Genotype) else None
        if warning:
            log(f"  {warning}")
        if (
            main
            and cfg.plots
            and cfg.plot_every
            and run.epoch % cfg.plot_every == 0
            and run.epoch < cfg.epochs
            and genotype is not None
        ):
            draw_plots(out, genotype, run.history, bool(alphas))
        stop_after_epoch(stop, run, cfg.epochs, resume_hint, setup.replicas)


def run_search(
    cfg: SearchConfig,
    out_dir: str | Path,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    resume: bool = False,
    datasets: tuple[Dataset, Dataset] | None = None,
    inputs: Sequence[str | Path] = (),
) -> SearchResult:
    """Run a whole search and write its run folder (see the module docstring).

    ``datasets=(train, test)`` searches on your own ``Dataset`` objects (with
    ``cfg.data.name = "datasets"``); a resume needs them passed again.

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
        return _run_search(folder, cfg, force, progress, log, resume, inputs, datasets)


def _run_search(
    folder: RunFolder,
    cfg: SearchConfig,
    force: bool,
    progress: bool,
    log: Callable[[str], None],
    resume: bool,
    inputs: Sequence[str | Path],
    datasets: tuple[Dataset, Dataset] | None,
) -> SearchResult:
    out = folder.path
    candidates: list[tuple[Path, dict]] = []
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
        setup = build_search(
            cfg, replicas, device, datasets
        )  # bad data fails here, before any write
        place_on_device(setup, cfg)
        return setup

    setup = build()
    if not resume and replicas.is_main:
        folder.claim_new(force, "search", inputs)
    alphas = getattr(setup.mutator, "arch_params", {})
    space_choices = {
        sid: list(members[0].full_choice_names)
        for sid, members in setup.mutator.search_spaces.items()
        if sid in alphas
    }
    if not candidates:
        if resume:
            log(f"resuming {out}: no checkpoint yet, starting the run from its config.yaml")
        if replicas.is_main:
            write_text(out / "config.yaml", dump_config(cfg))
            if setup.data is not None:
                write_data_info(out, setup.data)
        run = Progress(alpha_history=[{"epoch": 0, "probs": alpha_snapshot(setup.mutator)}])
    else:

        def restore(setup: SearchSetup, state: dict) -> Progress:
            run = restore_checkpoint(setup, state, log)
            check_progress(run, cfg.epochs, len(setup.train_loader))
            return run

        setup, run = restore_first_fitting(candidates, setup, build, restore, log)
        alphas = getattr(setup.mutator, "arch_params", {})
        check_same_position(replicas, run, out)
        log(resume_position(out, run, cfg.epochs))
    on = f" on {replicas.world_size} processes ({device.type})" if replicas.active else ""
    log(
        f"search: {cfg.algorithm} on {cfg.data.name}{on}, {cfg.epochs} epochs, "
        f"{sum(p.numel() for p in setup.supernet.parameters()):,} weights, "
        f"{sum(a.numel() for a in alphas.values())} alphas -> {out}"
    )
    board = TensorboardLog(out) if cfg.tensorboard and replicas.is_main else None
    try:
        with StopRequest() as stop:
            _search_epochs(setup, cfg, run, out, progress, log, space_choices, stop, board)
    finally:
        if board is not None:
            board.close()
    if replicas.is_main:  # again: a run resumed after its last checkpoint rewrites them here
        write_epoch_files(out, run, space_choices)
    genotype = derive(setup.supernet, setup.mutator)
    if genotype is None:  # SPOS: the architecture is the path the evolution scores best
        genotype = spos_evolution(setup, cfg, log)
    if not replicas.is_main:
        return SearchResult(genotype=genotype, history=run.history, out_dir=out)
    write_genotype(setup, genotype, out)
    name = "arch" if isinstance(genotype, NB201Arch) else "genotype"
    written = [
        "config.yaml",
        "data.json",
        "metrics.csv",
        "alphas.json",
        f"{name}.json",
        f"{name}.txt",
        "checkpoint.pt",
    ]
    if cfg.plots:
        written += [p.name for p in draw_plots(out, genotype, run.history, bool(alphas))]
    best = max(run.history, key=lambda row: row["val_acc"])
    seconds = sum(row["seconds"] for row in run.history)
    derived, derived_at = derived_network(genotype, cfg, setup.in_channels, setup.num_classes)
    log(f"search finished in {seconds:.0f}s")
    log(
        f"  best val acc   {best['val_acc']:.4f} (epoch "
        f"{best['epoch']}), final {run.history[-1]['val_acc']:.4f}"
    )
    log(f"  genotype       {genotype}")
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
            f"  decided        derived ops' mean softmax weight {decided['derived_mean_weight']:.3f} "
            f"({decided['times_uniform']:.2f}x uniform); "
            f"{decided['changed']} of {decided['decisions']} edges "
            f"changed their strongest op since the start"
        )
    log(f"  derived net    {sum(p.numel() for p in derived.parameters()):,} weights {derived_at}")
    warning = collapse_warning(genotype) if isinstance(genotype, Genotype) else None
    if warning:
        log(f"  {warning}")
    log(f"  files          {out}/: {' '.join(written)}")
    return SearchResult(genotype=genotype, history=run.history, out_dir=out)


def write_epoch_files(out: Path, run: Progress, space_choices: dict) -> None:
    """``metrics.csv`` and ``alphas.json`` from the run's history (all a checkpoint holds)."""
    write_text(out / "metrics.csv", csv_text(run.history, METRIC_COLUMNS))
    write_text(
        out / "alphas.json",
        json.dumps({"choices": space_choices, "history": run.alpha_history}),
    )


def draw_plots(
    out: Path, genotype: Genotype | NB201Arch, history: list[dict], has_alphas: bool
) -> list[Path]:
    """Every plot of the run folder: the NAS-Bench-201 space has curves only
    (alpha panels and cell diagrams are drawn for DARTS cells), SPOS curves
    and cells (it has no alphas)."""
    if isinstance(genotype, NB201Arch):
        return plot_curves(history, out / "curves")
    if not has_alphas:
        return plot_curves(history, out / "curves") + plot_genotype(genotype, out)
    return plot_run(out)


def spos_evolution(setup: SearchSetup, cfg: SearchConfig, log: Callable[[str], None]) -> Genotype:
    """SPOS' second stage: evolve paths of the trained supernet, scored by
    validation accuracy of the shared weights (BN re-estimated per path when
    ``spos.bn_batches`` > 0)."""
    sp, steps = cfg.spos, cfg.network.steps
    concat = list(range(2 + steps - cfg.network.multiplier, 2 + steps))

    def score(genotype: Genotype) -> float:
        accuracy = path_accuracy(
            setup.supernet,
            setup.mutator,
            genotype,
            setup.val_loader,
            recalibrate_bn_batches=sp.bn_batches,
            bn_loader=setup.train_loader,
        )
        # Data-parallel, each rank scored its shard of the validation half: combine them.
        size = len(setup.val_loader.dataset)
        right, total = setup.replicas.sum_([accuracy * size, size])
        return right / total

    start = time.perf_counter()
    best, best_score, history = evolution_search(
        score,
        lambda rng: sample_genotype(rng, steps=steps, concat=concat),
        mutate_genotype,
        crossover_genotypes,
        population=sp.population,
        generations=sp.generations,
        parents=sp.parents,
        mutation_prob=sp.mutation_prob,
        seed=cfg.seed,
    )
    log(
        f"evolution: {sp.generations} generations of {sp.population} "
        f"paths in {time.perf_counter() - start:.0f}s; "
        f"best path val_acc {best_score:.4f} (first generation {history[0]:.4f})"
    )
    return best


def write_genotype(
    setup: SearchSetup, genotype: Genotype | NB201Arch | None, out: Path
) -> Genotype | NB201Arch | None:
    """Write the architecture as JSON and as text (DARTS notation in
    genotype.*, the NAS-Bench-201 arch string in arch.*); None writes nothing."""
    if genotype is None:
        return None
    name = "arch" if isinstance(genotype, NB201Arch) else "genotype"
    write_text(out / f"{name}.json", genotype.to_json(indent=2) + "\n")
    write_text(out / f"{name}.txt", str(genotype) + "\n")
    return genotype


def derived_network(
    genotype: Genotype | NB201Arch, cfg: SearchConfig, in_channels: int, num_classes: int
) -> tuple[nn.Module, str]:
    """The fixed network of the found architecture, and at which size it is built."""
    if isinstance(genotype, NB201Arch):
        net = NB201Network(
            genotype, C=cfg.nb201.C, N=cfg.nb201.N, num_classes=num_classes, in_channels=in_channels
        )
        return net, f"(NAS-Bench-201 network, C={cfg.nb201.C}, N={cfg.nb201.N})"
    train_defaults = TrainConfig().network
    net = NetworkCIFAR(
        genotype,
        C=train_defaults.C,
        layers=train_defaults.layers,
        in_channels=in_channels,
        num_classes=num_classes,
    )
    return net, f"at the train defaults (C={train_defaults.C}, {train_defaults.layers} cells)"
