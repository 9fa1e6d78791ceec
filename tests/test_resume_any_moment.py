"""Resume from any moment: after the last checkpoint, with checkpoints that do not fit,
with --then-train; the NaN guard over buffers and optimizer state; a stop after the last epoch."""

import shutil

import pytest
import torch
import yaml

from gradnas.cli import main
from gradnas.engine.common import Progress, stop_after_epoch
from gradnas.engine.files import load_checkpoint
from gradnas.engine.interrupt import Interrupted

TINY = {
    "epochs": 2,
    "threads": 1,
    "plots": False,
    "data": {"batch_size": 256},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}


def write_config(path, **overrides):
    path.write_text(yaml.safe_dump({**TINY, **overrides}))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    config = write_config(root / "tiny.yaml")
    assert (
        main(["search", "--config", str(config), "--out", str(root / "run"), "--no-progress"]) == 0
    )
    return root / "run"


@pytest.fixture
def run(tmp_path, finished):
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def test_a_kill_after_the_last_checkpoint_has_its_derived_files_rewritten(run, capsys):
    derived = ("metrics.csv", "alphas.json", "genotype.json", "genotype.txt")
    expected = {name: (run / name).read_text() for name in derived}
    for name in derived:  # as left by a kill between the last checkpoint and these writes
        (run / name).write_text("stale\n")
    assert main(["search", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "all 2 epochs were done" in out and "at epoch 3" not in out
    assert {name: (run / name).read_text() for name in derived} == expected


def test_train_resumed_after_its_last_checkpoint_writes_every_epoch_row(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"epochs": 2, "threads": 1, "network": {"C": 4}}))
    out = tmp_path / "train"
    assert main(["train", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    rows = (out / "metrics.csv").read_text()
    (out / "metrics.csv").write_text(rows.splitlines()[0] + "\n" + rows.splitlines()[1] + "\n")
    (out / "model.pt").unlink()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert (out / "metrics.csv").read_text() == rows and (out / "model.pt").exists()


def _damage(state, how):
    if how == "other width":  # weights of a wider network under the same config
        state["supernet"] = {
            k: torch.cat([v, v]) if v.dim() else v for k, v in state["supernet"].items()
        }
    elif how == "missing keys":
        del state["weight_optimizer"]
    elif how == "other algorithm":
        state["algorithm"] = {"tau": 5.0, "tau_max": 10.0, "tau_min": 0.1}
    elif how == "other config":
        state["config"]["network"]["C"] = 4
    return state


@pytest.mark.parametrize("how", ["other width", "missing keys", "other algorithm", "other config"])
def test_a_checkpoint_that_does_not_fit_falls_back_to_the_previous_one(run, capsys, how):
    torch.save(_damage(load_checkpoint(run / "checkpoint.pt"), how), run / "checkpoint.pt")
    assert main(["search", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "checkpoint.prev.pt" in out
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["epoch"] == 2


@pytest.mark.parametrize("how", ["other width", "missing keys", "other config"])
def test_with_both_checkpoints_unfit_the_resume_is_one_error(run, capsys, how):
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        torch.save(_damage(load_checkpoint(run / name), how), run / name)
    assert main(["search", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("gradnas: error:") and err.count("\n") == 1 and "checkpoint.prev.pt" in err
    )


def test_resume_then_train_retrains_the_found_genotype(run):
    args = ["search", "--resume", str(run), "--then-train", "--no-progress"]
    train_config = run.parent / "train.yaml"
    train_config.write_text(yaml.safe_dump({"epochs": 1, "threads": 1, "network": {"C": 4}}))
    assert main([*args, "--train-config", str(train_config)]) == 0
    assert (run / "train" / "result.json").exists()
    assert (run / "train" / "genotype.json").read_text() == (run / "genotype.json").read_text()


def test_a_stop_requested_during_the_last_epochs_end_is_honoured():
    class Stop:
        signum = 15

    with pytest.raises(Interrupted, match="after epoch 2; checkpoint written"):
        stop_after_epoch(Stop(), Progress(epoch=2), 2, "gradnas search --resume RUN")


@pytest.mark.parametrize("where", ["buffer", "optimizer state"])
def test_the_nan_guard_checks_buffers_and_optimizer_state(tmp_path, capsys, monkeypatch, where):
    from gradnas.algorithms.darts import Darts

    real_step, calls = Darts.step, []

    def step(self, train_batch, val_batch):
        metrics = real_step(self, train_batch, val_batch)
        calls.append(1)
        if len(calls) == 4:  # epoch 2, step 1: finite losses, a poisoned state
            with torch.no_grad():
                if where == "buffer":
                    bn = next(
                        m for m in self.supernet.modules() if isinstance(m, torch.nn.BatchNorm2d)
                    )
                    bn.running_var[0] = float("inf")
                else:
                    state = next(iter(self.weight_optimizer.state.values()))
                    state["momentum_buffer"][...] = float("nan")
        return metrics

    monkeypatch.setattr(Darts, "step", step)
    config = write_config(tmp_path / "tiny.yaml", checkpoint_every=1)  # a save after each step
    out = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"non-finite values at epoch 2, step 1 ({where.split()[0]}" in err
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["progress"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["supernet"].values() if t.is_floating_point())
