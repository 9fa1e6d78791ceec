"""ONNX and torch.export files of a derived network: same outputs, written atomically."""

import onnx
import pytest
import torch

from gradnas import export
from gradnas.export import (
    ONNX_OPSET,
    ExportError,
    export_onnx,
    export_pt2,
    load_pt2,
    max_abs_difference_onnx,
)
from gradnas.genotype import DARTS_V2
from gradnas.spaces.darts.network import NetworkCIFAR

# Outputs of the file vs PyTorch; float32 rounding gave ~1e-8 on this network.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model() -> NetworkCIFAR:
    """A small DARTS_V2 network for 8x8 one-channel images, with non-trivial BN statistics."""
    torch.manual_seed(0)
    net = NetworkCIFAR(DARTS_V2, C=8, layers=5, in_channels=1, num_classes=10)
    with torch.no_grad():
        net.train()
        net(torch.randn(16, 1, 8, 8))  # moves the running statistics off (0, 1)
    return net.eval()


@pytest.fixture(scope="module")
def onnx_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    opset = export_onnx(model, torch.randn(1, 1, 8, 8), path)
    return path, opset


@pytest.fixture(scope="module")
def pt2_module(model, tmp_path_factory) -> torch.nn.Module:
    """The module read back from a .pt2 export."""
    path = tmp_path_factory.mktemp("pt2") / "net.pt2"
    export_pt2(model, torch.randn(1, 1, 8, 8), path)
    return load_pt2(path).module()


@pytest.mark.parametrize("batch", [1, 4])
def test_onnx_file_matches_pytorch_on_any_batch_size(model, onnx_file, batch):
    x = torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(batch))
    assert max_abs_difference_onnx(onnx_file[0], model, x) <= TOLERANCE


def test_onnx_difference_check_sees_a_different_model(model, onnx_file):
    other = NetworkCIFAR(DARTS_V2, C=8, layers=5, in_channels=1, num_classes=10).eval()
    assert max_abs_difference_onnx(onnx_file[0], other, torch.randn(2, 1, 8, 8)) > TOLERANCE


def test_onnx_export_returns_the_opset_written_in_the_file(onnx_file):
    path, opset = onnx_file
    written = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
    assert opset == written[""] == ONNX_OPSET


def test_onnx_input_has_a_dynamic_batch_dimension(onnx_file):
    (graph_input,) = onnx.load(str(onnx_file[0])).graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == export.BATCH_DIM
    assert [d.dim_value for d in dims[1:]] == [1, 8, 8]


@pytest.mark.parametrize("batch", [1, 4])
def test_pt2_file_matches_pytorch_on_any_batch_size(model, pt2_module, batch):
    x = torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        got, expected = pt2_module(x), model(x)
    assert (got - expected).abs().max().item() <= TOLERANCE


def test_export_traces_in_eval_mode_and_restores_the_mode(tmp_path):
    seen = []
    layer = torch.nn.Linear(3, 2)
    layer.register_forward_hook(lambda module, args, out: seen.append(module.training))
    layer.train()
    export_pt2(layer, torch.randn(2, 3), tmp_path / "layer.pt2")
    assert seen and not any(seen)
    assert layer.training


def test_export_of_a_network_with_auxiliary_head_gives_plain_logits(tmp_path):
    # In training mode this network returns (logits, logits_aux); the export must not.
    net = NetworkCIFAR(DARTS_V2, C=4, layers=3, in_channels=1, num_classes=10, auxiliary=True)
    export_pt2(net, torch.randn(2, 1, 8, 8), tmp_path / "net.pt2")
    out = load_pt2(tmp_path / "net.pt2").module()(torch.randn(3, 1, 8, 8))
    assert isinstance(out, torch.Tensor) and out.shape == (3, 10)


@pytest.mark.parametrize("export_fn", [export_onnx, export_pt2])
def test_export_into_a_missing_folder_is_refused_and_writes_nothing(model, tmp_path, export_fn):
    with pytest.raises(ExportError, match="does not exist"):
        export_fn(model, torch.randn(1, 1, 8, 8), tmp_path / "missing" / "net.out")
    assert list(tmp_path.iterdir()) == []


def _write_then_fail(destination, *args, **kwargs):
    """Stand-in for a writer that dies half-way (disk full)."""
    if hasattr(destination, "write"):
        destination.write(b"partial")
    else:
        with open(destination, "wb") as f:
            f.write(b"partial")
    raise OSError("No space left on device")


class _ProgramThatFailsToSave:
    def save(self, destination, **kwargs):
        _write_then_fail(destination)


def test_failing_onnx_export_leaves_no_partial_file(model, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: _ProgramThatFailsToSave())
    with pytest.raises(ExportError, match="No space left"):
        export_onnx(model, torch.randn(1, 1, 8, 8), tmp_path / "net.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failing_pt2_export_leaves_no_partial_file(model, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.export, "export", lambda *args, **kwargs: "traced program")
    monkeypatch.setattr(torch.export, "save", lambda program, f, **kw: _write_then_fail(f))
    with pytest.raises(ExportError, match="No space left"):
        export_pt2(model, torch.randn(1, 1, 8, 8), tmp_path / "net.pt2")
    assert list(tmp_path.iterdir()) == []


def test_failing_export_keeps_the_previous_file(model, tmp_path, monkeypatch):
    path = tmp_path / "net.pt2"
    path.write_bytes(b"previous export")
    monkeypatch.setattr(torch.export, "export", lambda *args, **kwargs: "traced program")
    monkeypatch.setattr(torch.export, "save", lambda program, f, **kw: _write_then_fail(f))
    with pytest.raises(ExportError):
        export_pt2(model, torch.randn(1, 1, 8, 8), path)
    assert path.read_bytes() == b"previous export" and list(tmp_path.iterdir()) == [path]


def test_load_pt2_names_a_corrupt_file(tmp_path):
    path = tmp_path / "net.pt2"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(ExportError, match="not a readable torch.export program"):
        load_pt2(path)


def test_load_pt2_names_a_missing_file(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        load_pt2(tmp_path / "net.pt2")


def test_export_rejects_an_example_without_batch_dimension(model, tmp_path):
    with pytest.raises(ExportError, match="batch dimension"):
        export_pt2(model, torch.tensor(1.0), tmp_path / "net.pt2")


def test_onnx_and_pt2_exports_print_nothing_about_the_exporters(tmp_path):
    # torch's ONNX exporter logs a "Skipping torchvision::nms" line per torchvision operator and
    # torch.export warns about its own LeafSpec; a fresh process shows what a user would see.
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from gradnas.export import export_onnx, export_pt2\n"
        "from gradnas.genotype import DARTS_V2\n"
        "from gradnas.spaces.darts.network import NetworkCIFAR\n"
        "net = NetworkCIFAR(DARTS_V2, C=4, layers=3, in_channels=1, num_classes=10)\n"
        f"export_onnx(net, torch.zeros(1, 1, 8, 8), {str(tmp_path / 'n.onnx')!r})\n"
        f"export_pt2(net, torch.zeros(1, 1, 8, 8), {str(tmp_path / 'n.pt2')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (tmp_path / "n.onnx").is_file() and (tmp_path / "n.pt2").is_file()
    assert done.stdout == ""
    assert done.stderr == ""
