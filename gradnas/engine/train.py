"""Retraining a derived network from a genotype.

``run_train(cfg, out_dir)`` builds :class:`~gradnas.spaces.darts.NetworkCIFAR`
for ``cfg.genotype`` (a published name or a ``genotype.json``), trains it on
all search data (train and val halves together) and evaluates on the held-out
test split after every epoch. The run folder holds:

- ``config.yaml`` and ``genotype.json``: what produced the run; ``data.json``: the
  channels, image size, classes and normalisation of the data it ran on;
- ``metrics.csv``: one row per epoch (train loss/accuracy, test loss/accuracy);
- ``checkpoint.pt`` (+ ``checkpoint.prev.pt``): everything a resume needs;
- ``model.pt``: the final weights (a plain state dict);
- ``result.json``: final test accuracy and loss, parameter count.

:func:`load_trained` rebuilds the network of a run folder from those files.

Under ``torchrun`` the network trains data-parallel with DDP: each rank
reads its share of every batch and draws its own augmentation and
drop-path masks (its RNG seeded from the seed and its rank, and saved per
rank in the checkpoint); only rank 0 writes and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .. import parallel
from ..algorithms.base import accuracy
from ..architectures import DartsSize, resolve_architecture
from ..config import (
    ConfigError,
    TrainConfig,
    config_to_dict,
    dump_config,
    load_config,
)
from ..data import make_loader
from ..data.sources import Splits
from ..genotype import PUBLISHED, Genotype, GenotypeError
from ..genotype_file import read_genotype_file
from ..spaces.contract import SearchSpace, SpaceError
from ..spaces.darts import NetworkCIFAR, drop_path_schedule
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
from .data import check_batch_fits, load_data, loader_options, read_data_info, write_data_info
from .files import RunDirError, load_problem, save_checkpoint, save_torch, write_text
from .interrupt import StopRequest
from .loop import run_epochs
from .resume import (
    MISFIT_ERRORS,
    check_progress,
    one_line,
    restore_first_fitting,
    resume_candidates,
)
from .rng import get_rng_state, set_rng_state
from .run_folder import RunFolder, hint_on_second_interrupt, is_main_process
from .run_record import Shapes, read_space_record
from .threads import choose_threads

CHECKPOINT_FORMAT = "gradnas-train-1"
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "lr",
    "drop_path_prob",
    "seconds",
)


def resolve_genotype(spec: str) -> Genotype:
    """A published genotype by name, or one read from a file or a run folder.

    Files may hold JSON (``genotype.json``) or the DARTS notation
    (``genotype.txt``); a folder means its ``genotype.json``.
    """
    if spec in PUBLISHED:
        return PUBLISHED[spec]
    path = Path(spec)
    if path.is_dir():
        path = path / "genotype.json"
    if not path.is_file():
        raise GenotypeError(
            f"genotype {spec!r} is neither a published name ({', '.join(PUBLISHED)}) "
            f"nor a genotype file"
        )
    return read_genotype_file(path)


def build_network(
    cfg: TrainConfig, genotype: Genotype, in_channels: int, num_classes: int
) -> NetworkCIFAR:
    net = cfg.network
    return NetworkCIFAR(
        genotype,
        C=net.C,
        num_classes=num_classes,
        layers=net.layers,
        auxiliary=net.auxiliary,
        in_channels=in_channels,
    )


def darts_size(cfg: TrainConfig) -> DartsSize:
    """The size of a DARTS genotype's network in a retraining."""
    return DartsSize(cfg.network.C, cfg.network.layers, cfg.network.auxiliary)


@dataclass
class TrainSetup:
    model: nn.Module  # the fixed network: NetworkCIFAR for DARTS cells, or the space's own
    genotype: Any  # the architecture, a value of its space (a Genotype for DARTS cells)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: torch.utils.data.DataLoader
    test_loader: torch.utils.data.DataLoader
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS
    device: torch.device = torch.device("cpu")
    forward: nn.Module | None = None  # what the training step calls: the model, or its DDP wrapper
    space: SearchSpace | None = None
    record: dict[str, Any] = field(default_factory=dict)  # space.json of the run, shapes included
    data: Splits | None = None  # what data.json records


def build_train(
    cfg: TrainConfig,
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS,
    device: torch.device = torch.device("cpu"),
    datasets: tuple[Dataset[Any], Dataset[Any]] | None = None,
    splits: Splits | None = None,
    factory: Any = None,
) -> TrainSetup:
    """Architecture, data, network and optimizer for ``cfg``, seeded; raises before anything is written.

    ``cfg.genotype`` may name an architecture of any space (a search run folder
    keeps its space in ``space.json``): its fixed network is what trains.
    ``datasets=(train, test)`` are a caller's own data sets (``data.name:
    datasets``); ``splits`` replaces the config's data altogether.
    """
    resolved = resolve_architecture(cfg.genotype, darts_size(cfg), factory)
    genotype = resolved.arch
    seed_everything(cfg.seed)
    d = cfg.data
    if splits is None:
        splits = load_data(d, cfg.seed, datasets)
    check_batch_fits(splits, d.batch_size, ("train_all",))
    shapes = Shapes.of(splits)
    try:
        model = resolved.space.fixed_network(genotype, shapes.in_channels, shapes.num_classes)
    except SpaceError as err:
        raise ConfigError(str(err)) from None
    if device.type != "cpu":
        model.to(device)
    opt = cfg.optim
    optimizer = torch.optim.SGD(
        model.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg.epochs, eta_min=opt.lr_min
    )
    train_loader = make_loader(
        splits.train_all,
        d.batch_size,
        shuffle=True,
        seed=cfg.seed,
        rank=replicas.rank,
        world_size=replicas.world_size,
        augment=splits.augmentation,
        **loader_options(d, device),
    )
    test_loader = make_loader(
        Subset(splits.test, parallel.shard(len(splits.test), replicas)),
        d.batch_size,
        shuffle=False,
        seed=cfg.seed,
        **loader_options(d, device),
    )
    forward: nn.Module = model
    if replicas.active:
        if cfg.sync_bn:
            parallel.convert_sync_batchnorm(model, device)
        forward = parallel.wrap(model, replicas, device)
        # Each rank its own augmentation and drop-path masks (the weights were drawn alike above).
        seed_everything(rank_seed(cfg.seed, replicas.rank))
    record = {**resolved.space.record(), **shapes.to_dict()}
    return TrainSetup(
        model,
        genotype,
        optimizer,
        scheduler,
        train_loader,
        test_loader,
        replicas,
        device,
        forward,
        resolved.space,
        record,
        splits,
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def rank_seed(seed: int, rank: int) -> int:
    """A seed for ``rank``'s random draws, unrelated to those of other ranks."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def train_step(
    setup: TrainSetup, batch, auxiliary_weight: float, grad_clip: float
) -> dict[str, float]:
    """One SGD step; with the auxiliary head its loss is added with ``auxiliary_weight`` (DARTS: 0.4)."""
    x, y = to_device(batch, setup.device)
    setup.model.train()
    setup.optimizer.zero_grad(set_to_none=True)
    out = (setup.forward or setup.model)(x)
    logits, logits_aux = out if isinstance(out, tuple) else (out, None)
    loss = nn.functional.cross_entropy(logits, y)
    total = (
        loss
        if logits_aux is None
        else loss + auxiliary_weight * nn.functional.cross_entropy(logits_aux, y)
    )
    total.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(setup.model.parameters(), grad_clip)
    setup.optimizer.step()
    return {"train_loss": loss.item(), "train_acc": accuracy(logits, y).item()}


def checkpoint_state(setup: TrainSetup, cfg: TrainConfig, run: Progress, rng_ranks: list) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config_to_dict(cfg),
        "genotype": json.loads(setup.genotype.to_json()),
        "progress": run.to_state(),
        "model": setup.model.state_dict(),
        "optimizer": setup.optimizer.state_dict(),
        "scheduler": setup.scheduler.state_dict(),
        "rng": rng_ranks[0],
        "rng_ranks": rng_ranks,
        "threads": torch.get_num_threads(),
        "world_size": setup.replicas.world_size,
    }


def _save(setup: TrainSetup, cfg: TrainConfig, run: Progress, out: Path) -> None:
    """Checkpoint (rank 0, with every rank's RNG state), unless a weight went non-finite."""
    check_finite_weights(setup.model, run.epoch, run.step, (setup.optimizer,))
    rng_ranks = setup.replicas.gather(get_rng_state())
    setup.replicas.broadcast_buffers_(setup.model)
    if setup.replicas.is_main:
        save_checkpoint(out / "checkpoint.pt", checkpoint_state(setup, cfg, run, rng_ranks))


def restore_rng(
    state: dict, replicas: parallel.Replicas, seed: int, log: Callable[[str], None]
) -> None:
    """This rank's saved RNG state; a rank the checkpoint has none for starts a fresh stream."""
    saved = state.get("rng_ranks", [state["rng"]])
    if len(saved) != replicas.world_size:
        log(
            f"warning: the run was checkpointed with {len(saved)} process(es) and resumes with "
            f"{replicas.world_size}; the batches and random "
            "draws differ from an uninterrupted run from here on"
        )
    if replicas.rank < len(saved):
        set_rng_state(saved[replicas.rank])
    else:
        seed_everything(rank_seed(seed, replicas.rank))


@dataclass
class TrainJob:
    """A retraining as a :class:`~.loop.Job` of the one run loop."""

    setup: TrainSetup
    cfg: TrainConfig
    out: Path
    log: Callable[[str], None]
    lr: float = 0.0
    test_loss: float = float("nan")
    test_acc: float = float("nan")

    @property
    def epochs(self) -> int:
        return self.cfg.epochs

    @property
    def train_loader(self) -> torch.utils.data.DataLoader:
        return self.setup.train_loader

    @property
    def checkpoint_every(self) -> int:
        return self.cfg.checkpoint_every

    @property
    def resume_hint(self) -> str:
        return resume_command("train", self.out)

    def start_epoch(self, epoch: int, fresh: bool) -> None:
        drop_path = drop_path_schedule(epoch, self.cfg.epochs, self.cfg.network.drop_path_prob)
        if hasattr(self.setup.model, "drop_path_prob"):  # networks with drop-path (DARTS cells)
            self.setup.model.drop_path_prob = drop_path
        self.lr = self.setup.optimizer.param_groups[0]["lr"]

    def step(self, batch: Any) -> dict[str, float]:
        net = self.cfg.network
        return train_step(self.setup, batch, net.auxiliary_weight, self.cfg.optim.grad_clip)

    def check(self, metrics: dict[str, float], run: Progress) -> None:
        check_finite(metrics, run.epoch, run.step)

    def end_epoch(self, epoch: int, run: Progress, started: float) -> None:
        setup = self.setup
        setup.scheduler.step()
        setup.replicas.broadcast_buffers_(setup.model)
        self.test_loss, self.test_acc = evaluate(setup.model, setup.test_loader, setup.replicas)
        train = {key: value / len(setup.train_loader) for key, value in run.sums.items()}
        run.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": round(train["train_loss"], 6),
                "train_acc": round(train["train_acc"], 6),
                "test_loss": round(self.test_loss, 6),
                "test_acc": round(self.test_acc, 6),
                "lr": self.lr,
                "drop_path_prob": getattr(setup.model, "drop_path_prob", 0.0),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )

    def save(self, run: Progress) -> None:
        _save(self.setup, self.cfg, run, self.out)

    def after_epoch(self, run: Progress) -> None:
        row = run.history[-1]
        if self.setup.replicas.is_main:
            write_text(self.out / "metrics.csv", csv_text(run.history, METRIC_COLUMNS))
        self.log(
            f"epoch {row['epoch']}/{self.cfg.epochs}  train_acc {row['train_acc']:.4f}  "
            f"test_acc {self.test_acc:.4f}  ({row['seconds']:.1f}s)"
        )


@dataclass
class TrainResult:
    test_acc: float
    test_loss: float
    history: list[dict[str, float]]
    out_dir: Path


def run_train(
    cfg: TrainConfig,
    out_dir: str | Path,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    resume: bool = False,
    datasets: tuple[Dataset[Any], Dataset[Any]] | None = None,
    inputs: Sequence[str | Path] = (),
    splits: Splits | None = None,
    factory: Any = None,
) -> TrainResult:
    """Train the derived network of ``cfg.genotype`` and write its run folder (module docstring).

    ``datasets=(train, test)`` trains on your own ``Dataset`` objects (with
    ``cfg.data.name = "datasets"``); ``splits`` and ``factory`` are the Python
    API's ready splits and space factory; a resume needs them passed again.
    The run holds the folder's lock from start to end; ``inputs`` (its
    ``--config``) and the genotype file are never removed by ``force``.
    """
    with RunFolder(out_dir) as folder, hint_on_second_interrupt(folder, "train"):
        return _run_train(
            folder, cfg, force, progress, log, resume, inputs, datasets, splits, factory
        )


def _run_train(
    folder: RunFolder,
    cfg: TrainConfig,
    force: bool,
    progress: bool,
    log: Callable[[str], None],
    resume: bool,
    inputs: Sequence[str | Path],
    datasets: tuple[Dataset[Any], Dataset[Any]] | None,
    splits: Splits | None,
    factory: Any,
) -> TrainResult:
    out = folder.path
    candidates: list[tuple[Path, dict[str, Any]]] = []
    if resume:
        if is_main_process():
            folder.claim_existing()
        cfg, candidates = resume_candidates(out, CHECKPOINT_FORMAT, TrainConfig, log)
    flush_denormals()
    choose_threads(cfg.threads, log)
    replicas, device = parallel.start(cfg.device)
    if not replicas.is_main:
        log, progress = quiet, False

    def build() -> TrainSetup:
        # a bad genotype or data fails here, before anything is written
        return build_train(cfg, replicas, device, datasets, splits, factory)

    setup = build()
    n_params = sum(p.numel() for p in setup.model.parameters())
    if not resume and replicas.is_main:
        genotype_file = [cfg.genotype] if Path(cfg.genotype).exists() else []
        folder.claim_new(force, "train", [*inputs, *genotype_file])
    if not candidates:
        if resume:
            log(f"resuming {out}: no checkpoint yet, starting the run from its config.yaml")
        if replicas.is_main:
            write_text(out / "config.yaml", dump_config(cfg))
            write_text(out / "space.json", json.dumps(setup.record, indent=2) + "\n")
            assert setup.space is not None
            for name, text in setup.space.arch_texts(setup.genotype).items():
                if name.endswith(".json"):  # the JSON form names the architecture exactly
                    write_text(out / name, text)
            if setup.data is not None:
                write_data_info(out, setup.data)
        run = Progress()
    else:

        def restore(setup: TrainSetup, state: dict[str, Any]) -> Progress:
            if _canonical(state["genotype"]) != _canonical(json.loads(setup.genotype.to_json())):
                raise RunDirError(
                    f"the genotype the run started with differs from {cfg.genotype!r} now"
                )
            setup.model.load_state_dict(state["model"])
            setup.optimizer.load_state_dict(state["optimizer"])
            setup.scheduler.load_state_dict(state["scheduler"])
            restore_rng(state, replicas, cfg.seed, log)
            check_thread_count(state["threads"], log)
            run = Progress.from_state(state["progress"])
            check_progress(run, cfg.epochs, len(setup.train_loader))
            return run

        setup, run = restore_first_fitting(candidates, setup, build, restore, log)
        check_same_position(replicas, run, out)
        log(resume_position(out, run, cfg.epochs))
    on = f" on {replicas.world_size} processes ({device.type})" if replicas.active else ""
    log(
        f"train: {cfg.genotype} on {cfg.data.name}{on}, {cfg.epochs} epochs, {n_params:,} weights -> {out}"
    )

    job = TrainJob(setup, cfg, out, log)
    with StopRequest() as stop:
        run_epochs(job, run, stop, progress, replicas)
    test_loss, test_acc = job.test_loss, job.test_acc
    if (
        run.history and test_acc != test_acc
    ):  # resumed after the last epoch: evaluate what was saved
        test_loss, test_acc = evaluate(setup.model, setup.test_loader, replicas)
    if not replicas.is_main:
        return TrainResult(test_acc, test_loss, run.history, out)
    # Again: a run resumed after its last checkpoint may have died before writing it.
    write_text(out / "metrics.csv", csv_text(run.history, METRIC_COLUMNS))
    save_torch(out / "model.pt", setup.model.state_dict())
    result = {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "parameters": n_params,
        "epochs": cfg.epochs,
        "genotype": str(setup.genotype),
    }
    write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    log(f"test accuracy {test_acc:.4f} (loss {test_loss:.4f}), {n_params:,} weights")
    arch_file = f"{setup.space.arch_file}.json" if setup.space is not None else "genotype.json"
    log(
        f"wrote {out}/: config.yaml space.json {arch_file} data.json metrics.csv checkpoint.pt "
        f"model.pt result.json"
    )
    return TrainResult(test_acc, test_loss, run.history, out)


def trained_shapes(run_dir: str | Path) -> Shapes | None:
    """The data shapes a train run folder records (None for folders from before ``space.json``)."""
    record = read_space_record(Path(run_dir))
    return None if record is None else Shapes.from_dict(record)


def load_trained(run_dir: str | Path) -> tuple[nn.Module, TrainConfig]:
    """The trained network of a ``gradnas train`` run folder, in eval mode, and its config.

    The folder's ``space.json`` gives the space and the data's shapes, so the
    data set is not loaded; folders from before it are rebuilt as DARTS
    networks with the shapes read from the data set.
    """
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml", TrainConfig)
    shapes = trained_shapes(run_dir)
    if shapes is not None:
        resolved = resolve_architecture(str(run_dir), darts_size(cfg))
        try:
            model = resolved.space.fixed_network(
                resolved.arch, shapes.in_channels, shapes.num_classes
            )
        except SpaceError as err:
            raise RunDirError(f"{run_dir}: {err}") from None
    else:
        genotype = resolve_genotype(str(run_dir / "genotype.json"))
        info = read_data_info(run_dir)
        if info is None:  # a run folder from before data.json: read the data for its shape
            data = load_data(cfg.data, cfg.seed)
            info = {"in_channels": data.in_channels, "num_classes": data.num_classes}
        model = build_network(cfg, genotype, info["in_channels"], info["num_classes"])
    path = run_dir / "model.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(
            f"{path} does not exist; is {run_dir} a finished gradnas train run?"
        ) from None
    except Exception as err:  # noqa: BLE001 -- truncated, not a torch file, objects a safe load refuses
        raise RunDirError(
            f"{path} is corrupt or not a gradnas model ({load_problem(err)})"
        ) from None
    try:
        model.load_state_dict(state)
    except MISFIT_ERRORS as err:
        raise RunDirError(
            f"{path} does not fit the network of {run_dir / 'config.yaml'} ({one_line(err)})"
        ) from None
    return model.eval(), cfg
