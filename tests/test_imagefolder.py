"""Image folders of PNGs made with Pillow: layout, labels, resizing, statistics, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gradnas.data import make_loader
from gradnas.data.errors import DataError
from gradnas.data.sources import load_splits

CLASSES = ("cat", "ant", "bee")  # sorted: ant=0, bee=1, cat=2


def value(label: int, i: int, channel: int) -> int:
    return (label * 60 + i * 9 + channel * 25) % 256


def write_tree(
    root: Path, per_class: int = 4, side: int = 8, grey: bool = False, start: int = 0
) -> Path:
    """ROOT/CLASS/img_i.png, each image one flat colour that encodes (class, index)."""
    for name in CLASSES:
        label = sorted(CLASSES).index(name)
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            if grey:
                img = Image.new("L", (side, side), value(label, i, 0))
            else:
                img = Image.new("RGB", (side, side), tuple(value(label, i, c) for c in range(3)))
            img.save(root / name / f"img_{i}.png")
    return root


def split_tree(root: Path, val: bool = False, **kw) -> Path:
    write_tree(root / "train", **kw)
    write_tree(root / "test", per_class=2, start=100, **kw)
    if val:
        write_tree(root / "val", per_class=2, start=200, **kw)
    return root


def test_train_test_folders_sizes_labels_and_classes(tmp_path):
    s = load_splits("imagefolder", str(split_tree(tmp_path / "d")), seed=0)
    assert s.classes == ["ant", "bee", "cat"]
    assert (len(s.train_all), len(s.test), s.num_classes) == (12, 6, 3)
    assert (s.in_channels, s.image_size) == (3, 8)
    x, y = s.test[0]  # test/ant/img_100.png
    raw = torch.tensor([value(0, 100, c) for c in range(3)]) / 255.0
    mean, std = torch.tensor(s.mean), torch.tensor(s.std)
    assert int(y) == 0 and torch.allclose(x[:, 3, 3], (raw - mean) / std, atol=1e-6)


def test_statistics_are_those_of_the_training_pixels(tmp_path):
    s = load_splits("imagefolder", str(split_tree(tmp_path / "d")))
    pixels = (
        np.array([[value(label, i, c) for c in range(3)] for label in range(3) for i in range(4)])
        / 255.0
    )  # flat images: every pixel of an image has its colour
    assert s.mean == pytest.approx(tuple(pixels.mean(0))) and s.std == pytest.approx(
        tuple(pixels.std(0))
    )


def test_given_mean_and_std_are_used(tmp_path):
    s = load_splits("imagefolder", str(split_tree(tmp_path / "d")), mean=[0.5], std=[0.25])
    x, _ = s.train_all[0]
    label = int(s.train_all[0][1])
    assert s.mean == (0.5, 0.5, 0.5)
    i = int(s.train_all.files[0].stem.split("_")[1])  # img_<i>.png
    expected = (torch.tensor([value(label, i, c) for c in range(3)]) / 255.0 - 0.5) / 0.25
    assert torch.allclose(x[:, 0, 0], expected, atol=1e-6)


def test_val_folder_is_the_search_validation_half(tmp_path):
    s = load_splits("imagefolder", str(split_tree(tmp_path / "d", val=True)))
    assert (len(s.train), len(s.val), len(s.train_all)) == (12, 6, 18)
    assert all("val" in str(f) for f in s.val.files)


def test_one_folder_is_split_by_test_fraction_per_class(tmp_path):
    s = load_splits("imagefolder", str(write_tree(tmp_path / "d", per_class=10)), test_fraction=0.3)
    test_labels = [int(s.test[i][1]) for i in range(len(s.test))]
    assert np.bincount(test_labels).tolist() == [3, 3, 3]
    assert not set(s.test.files) & set(s.train_all.files)
    assert len(s.test.files) + len(s.train_all.files) == 30


def test_grey_images_give_one_channel_unless_rgb_is_asked(tmp_path):
    root = split_tree(tmp_path / "d", grey=True)
    assert load_splits("imagefolder", str(root)).in_channels == 1
    s = load_splits("imagefolder", str(root), channels=3)
    assert s.in_channels == 3 and tuple(s.train_all[0][0].shape) == (3, 8, 8)


def test_resize_keeps_the_centre_of_a_wide_image(tmp_path):
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        img = Image.new("RGB", (60, 20), (255, 0, 0))  # red | green (the middle half) | blue
        img.paste((0, 255, 0), (15, 0, 45, 20))
        img.paste((0, 0, 255), (45, 0, 60, 20))
        for i in range(3):
            img.save(root / name / f"{i}.png")
    s = load_splits("imagefolder", str(root), image_size=6, test_fraction=0.34, mean=[0], std=[1])
    x, _ = s.train_all[0]
    # 60x20 -> 18x6 (green at 4.5..13.5, blurred by 1 pixel) -> the centre 6x6 is all green
    assert tuple(x.shape) == (3, 6, 6)
    assert torch.allclose(x, torch.tensor([0.0, 1.0, 0.0]).reshape(3, 1, 1).expand(3, 6, 6))


def test_images_are_decoded_on_access_not_at_load(tmp_path):
    s = load_splits("imagefolder", str(split_tree(tmp_path / "d")), mean=[0.5], std=[0.5])
    gone = s.test.files[1]
    gone.unlink()  # a file removed after indexing fails when its item is read, by name
    s.test[0]
    with pytest.raises(DataError, match=str(gone)):
        s.test[1]


def test_workers_deliver_the_same_batches(tmp_path):
    s = load_splits("imagefolder", str(split_tree(tmp_path / "d")), augment=True)
    batches = []
    for workers in (0, 2):
        torch.manual_seed(3)
        loader = make_loader(s.train_all, 5, True, 0, num_workers=workers, augment=s.augmentation)
        batches.append([b for epoch in range(2) for b in loader])
    for (xa, ya), (xb, yb) in zip(*batches):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


# -- errors ---------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        load_splits("imagefolder", str(tmp_path / "nope"))


def test_class_folder_without_images_is_named(tmp_path):
    root = split_tree(tmp_path / "d")
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match=r"train/dog: class folder holds no images"):
        load_splits("imagefolder", str(root))


def test_unreadable_image_is_named(tmp_path):
    root = split_tree(tmp_path / "d")
    bad = root / "test" / "bee" / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=f"{bad}: not a readable image"):
        load_splits("imagefolder", str(root))


def test_fewer_than_two_classes(tmp_path):
    (tmp_path / "d" / "only").mkdir(parents=True)
    Image.new("L", (4, 4)).save(tmp_path / "d" / "only" / "x.png")
    with pytest.raises(DataError, match=r"found 1 class folder\(s\) \['only'\]; .* at least 2"):
        load_splits("imagefolder", str(tmp_path / "d"))


def test_test_class_unknown_to_train_is_named(tmp_path):
    root = split_tree(tmp_path / "d")
    (root / "test" / "dog").mkdir()
    Image.new("RGB", (8, 8)).save(root / "test" / "dog" / "x.png")
    with pytest.raises(DataError, match="class folder 'dog' is not among the training classes"):
        load_splits("imagefolder", str(root))


def test_train_without_test_is_refused(tmp_path):
    write_tree(tmp_path / "d" / "train")
    with pytest.raises(DataError, match="has train/ but no test/"):
        load_splits("imagefolder", str(tmp_path / "d"))


def test_mixed_sizes_need_image_size(tmp_path):
    root = split_tree(tmp_path / "d")
    Image.new("RGB", (12, 9)).save(root / "train" / "ant" / "big.png")
    with pytest.raises(
        DataError, match=r"not all of one square size \(8x8, 12x9\); set data.image_size"
    ):
        load_splits("imagefolder", str(root))
    assert load_splits("imagefolder", str(root), image_size=8).image_size == 8
