"""Every data error a user can hit: one `gradnas: error:` line, exit 2, nothing written."""

from __future__ import annotations

import json
import textwrap

import pytest
from PIL import Image
from test_idx import idx_bytes, write_mnist
from test_imagefolder import split_tree, write_tree

from gradnas.cli import main

TINY = {
    "epochs": 1,
    "threads": 1,
    "plots": False,
    "data": {"batch_size": 4},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}


def no_images_class(root):
    split_tree(root)
    (root / "train" / "dog").mkdir()


def unreadable(root):
    split_tree(root)
    (root / "train" / "ant" / "x.jpg").write_bytes(b"\xff\xd8 truncated")


def one_class(root):
    (root / "only").mkdir(parents=True)
    for i in range(3):
        Image.new("L", (4, 4), i).save(root / "only" / f"{i}.png")


def bad_label(root):
    write_mnist(root, zipped=False)
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes([0, 1, 2, 9, 0, 1], [6]))


def bad_header(root):
    write_mnist(root, zipped=False)
    raw = (root / "train-images-idx3-ubyte").read_bytes()
    (root / "train-images-idx3-ubyte").write_bytes(raw[:-5])


def factory(body):
    def make(root):
        root.mkdir()
        (root / "f.py").write_text(textwrap.dedent(body))

    return make


CASES = {
    "data_dir_with_digits": (None, ["--data-dir", "my_images"], "digits reads no files"),
    "no_data_dir": (None, ["--data", "imagefolder"], "imagefolder needs the folder of its files"),
    "unknown_source": (None, ["--data", "svhn"], "unknown data set 'svhn'"),
    "missing_folder": (
        None,
        ["--data", "imagefolder", "--data-dir", "{root}/none"],
        "does not exist",
    ),
    "class_without_images": (
        no_images_class,
        ["--data", "imagefolder"],
        "train/dog: class folder holds no images",
    ),
    "unreadable_image": (unreadable, ["--data", "imagefolder"], "x.jpg: not a readable image"),
    "one_class": (one_class, ["--data", "imagefolder"], "found 1 class folder(s)"),
    "label_out_of_range": (bad_label, ["--data", "mnist"], "test label 9 out of range 0..2"),
    "idx_header": (
        bad_header,
        ["--data", "mnist"],
        "the IDX header says 12x6x6 values (432 bytes) but 427",
    ),
    "split_too_small": (
        lambda root: write_tree(root, per_class=4),
        ["--data", "imagefolder", "--batch-size", "16"],
        "images, fewer than one batch of 16",  # search: the train half (5), train: all (10)
    ),
    "factory_raises": (
        factory("def make(seed):\n    raise OSError('disk gone')\n"),
        ["--data", "{root}/f.py:make"],
        "raised OSError: disk gone",
    ),
    "factory_not_pairs": (
        factory("def make(seed):\n    return [1, 2, 3], [4]\n"),
        ["--data", "{root}/f.py:make"],
        "training item 0 is int, not a pair (image tensor (C, H, W), int label)",
    ),
    "factory_no_attribute": (
        factory("def make(seed):\n    pass\n"),
        ["--data", "{root}/f.py:nope"],
        "has no attribute 'nope'",
    ),
    "subset_too_large": (
        lambda root: write_mnist(root),
        ["--data", "mnist", "--subset", "13"],
        "data.subset 13 is more than the 12 training images of mnist",
    ),
}


@pytest.mark.parametrize("command", ["search", "train"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_data_error_is_one_line_exit_2_nothing_written(tmp_path, capsys, case, command):
    make, flags, message = CASES[case]
    root = tmp_path / "data"
    if make is not None:
        make(root)
    flags = [f.format(root=root) for f in flags]
    if make is not None and "--data-dir" not in flags and not any(":" in f for f in flags):
        flags += ["--data-dir", str(root)]
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps(TINY if command == "search" else {"epochs": 1, "threads": 1,
                                                                  "data": {"batch_size": 4}}))  # fmt: skip
    out = tmp_path / "run"
    code = main([command, "--config", str(cfg), "--out", str(out), "--no-progress", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gradnas: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()
