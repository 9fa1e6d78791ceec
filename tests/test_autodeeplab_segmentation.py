"""The bundled segmentation task (digits on a canvas) and mean IoU."""

from __future__ import annotations

import pytest
import torch

from gradnas.data.segmentation import (
    BACKGROUND,
    NUM_CLASSES,
    DigitCanvasSegmentation,
    confusion_matrix,
    mean_iou,
)


def test_mean_iou_by_hand() -> None:
    target = torch.tensor([[0, 0, 1], [1, 2, 2]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    # class 0: inter {(0,0)} = 1, union {(0,0),(0,1),(1,2)} = 3 -> 1/3
    # class 1: inter {(0,2),(1,0)} = 2, union {(0,1),(0,2),(1,0)} = 3 -> 2/3
    # class 2: inter {(1,1)} = 1, union {(1,1),(1,2)} = 2 -> 1/2
    # class 3 appears nowhere and is left out of the mean
    assert mean_iou(pred, target, num_classes=4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert mean_iou(target, target, num_classes=4) == 1.0


def test_mean_iou_ignores_pixels() -> None:
    target = torch.tensor([0, 1, 255, 255])
    pred = torch.tensor([0, 0, 1, 1])
    # counted pixels: (0->0), (1->0): class 0 inter 1 / union 2, class 1 inter 0 / union 1
    assert mean_iou(pred, target, 2, ignore_index=255) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="outside 0..1"):
        mean_iou(pred, target, 2)


def test_confusion_matrix_rows_are_true_classes() -> None:
    # true 0 predicted as 1 twice; true 1 predicted as 1 once and as 0 once
    cm = confusion_matrix(torch.tensor([1, 1, 0, 1]), torch.tensor([0, 1, 1, 0]), 2)
    assert cm.tolist() == [[0, 2], [1, 1]]


def test_canvases_are_seeded_and_labels_follow_the_ink() -> None:
    a = DigitCanvasSegmentation(8, canvas=32, max_items=3, seed=5)
    b = DigitCanvasSegmentation(8, canvas=32, max_items=3, seed=5)
    c = DigitCanvasSegmentation(8, canvas=32, max_items=3, seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)
    image, labels = a[0]
    assert image.shape == (1, 32, 32) and labels.shape == (32, 32)
    assert labels.dtype == torch.int64 and a.num_classes == NUM_CLASSES == 11
    ink = a.images[:, 0]
    assert (ink[a.labels != BACKGROUND] >= 0.25).all()
    assert (ink[a.labels == BACKGROUND] == 0).all()
    assert int(a.labels.max()) <= 10 and (a.labels != BACKGROUND).any()


def test_a_single_digit_is_its_class_where_it_has_ink() -> None:
    """One digit (row 0 of load_digits is a 0, label 1) at scale 1 on an 8x8 canvas
    must be exactly its ink mask."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    d = DigitCanvasSegmentation(1, canvas=8, max_items=1, scale=1, digit_indices=[0])
    ink = torch.from_numpy(digits.images[0] / 16.0).float()
    assert torch.equal(d.labels[0], torch.where(ink >= 0.25, 1 + int(digits.target[0]), 0))


def test_bad_canvas_arguments() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        DigitCanvasSegmentation(1, canvas=8, scale=2)
    with pytest.raises(ValueError, match="num_images"):
        DigitCanvasSegmentation(0)


def write_pair(root, name: str, image, labels) -> None:
    """An image and its grey label PNG under root/images and root/labels."""
    from PIL import Image

    (root / "images").mkdir(exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    Image.fromarray(image).save(root / "images" / f"{name}.png")
    Image.fromarray(labels, mode="L").save(root / "labels" / f"{name}.png")


def test_segmentation_folder_reads_images_and_label_pngs(tmp_path) -> None:
    import numpy as np

    from gradnas.data.segmentation_folder import SegmentationFolder

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    labels = np.array([[0, 1, 2, 255, 0]] * 4, dtype=np.uint8)
    write_pair(tmp_path, "a", rgb, labels)
    data = SegmentationFolder(tmp_path, num_classes=3)
    image, target = data[0]
    assert image.shape == (3, 4, 5) and target.shape == (4, 5)
    assert torch.equal(image, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    assert torch.equal(target, torch.from_numpy(labels).long())
    grey, _ = SegmentationFolder(tmp_path, channels=1)[0]
    assert grey.shape == (1, 4, 5)


def test_segmentation_folder_names_what_is_wrong(tmp_path) -> None:
    import numpy as np

    from gradnas.data.cifar import DataError
    from gradnas.data.segmentation_folder import SegmentationFolder

    with pytest.raises(DataError, match="does not exist"):
        SegmentationFolder(tmp_path)
    write_pair(tmp_path, "a", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    (tmp_path / "labels" / "a.png").unlink()
    with pytest.raises(DataError, match="no label PNG .* for: a.png"):
        SegmentationFolder(tmp_path)
    write_pair(tmp_path, "a", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 3), np.uint8))
    with pytest.raises(DataError, match=r"sizes differ: a.png \(4, 4\) vs a.png \(3, 4\)"):
        SegmentationFolder(tmp_path)
    write_pair(tmp_path, "a", np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 7, np.uint8))
    with pytest.raises(DataError, match="label 7 is not a class 0..2"):
        SegmentationFolder(tmp_path, num_classes=3)[0]
