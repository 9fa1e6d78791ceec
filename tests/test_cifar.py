"""CIFAR binary files read without torchvision, and the tensor augmentations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradnas.data.cifar import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DataError,
    load_cifar,
)
from gradnas.data.transforms import (
    Compose,
    cifar_augmentation,
    cutout,
    random_crop,
    random_horizontal_flip,
)

RECORDS_PER_FILE = 3


def pixel(record: int, channel: int, row: int, col: int) -> int:
    """A distinct-looking byte for every position of every written record."""
    return (record * 37 + channel * 101 + row * 7 + col * 3) % 256


def record_bytes(labels: list[int], record: int) -> bytes:
    """One record as the format describes it: label byte(s), then the red,
    green and blue 32x32 planes, each row by row."""
    out = bytearray(labels)
    for channel in range(3):
        for row in range(32):
            for col in range(32):
                out.append(pixel(record, channel, row, col))
    return bytes(out)


def cifar10_label(record: int) -> int:
    return (record * 3 + 1) % 10


def write_cifar10(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    """5 training batches and a test batch of 3 records each; record numbers run on across files."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for f, name in enumerate(names):
        if name in skip:
            continue
        records = range(f * RECORDS_PER_FILE, (f + 1) * RECORDS_PER_FILE)
        (folder / name).write_bytes(b"".join(record_bytes([cifar10_label(r)], r) for r in records))
    return folder


def write_cifar100(folder: Path) -> Path:
    """train.bin (records 0..2) and test.bin (records 3..5); coarse label r % 20, fine label 99 - r."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in (("train.bin", range(3)), ("test.bin", range(3, 6))):
        (folder / name).write_bytes(b"".join(record_bytes([r % 20, 99 - r], r) for r in records))
    return folder


# -- reading ---------------------------------------------------------------------


def test_cifar10_pixel_comes_from_its_channel_plane(tmp_path):
    data = load_cifar("cifar10", write_cifar10(tmp_path), train=True, augment=False)
    # Record 1, green channel (the second 1024-byte plane), row 2, column 5.
    assert int(data.images[1, 1, 2, 5]) == pixel(1, 1, 2, 5)
    assert data.images.shape == (15, 3, 32, 32) and data.images.dtype == torch.uint8


def test_cifar10_training_files_are_concatenated_in_order(tmp_path):
    data = load_cifar("cifar10", write_cifar10(tmp_path), train=True, augment=False)
    assert data.labels.tolist() == [cifar10_label(r) for r in range(15)]
    assert int(data.images[13, 2, 31, 0]) == pixel(13, 2, 31, 0)  # data_batch_5, record 1, blue


def test_cifar10_test_split_reads_test_batch(tmp_path):
    data = load_cifar("cifar10", write_cifar10(tmp_path), train=False, augment=False)
    assert data.labels.tolist() == [cifar10_label(r) for r in range(15, 18)]
    assert int(data.images[0, 0, 0, 0]) == pixel(15, 0, 0, 0)


def test_cifar10_items_are_normalised_with_darts_statistics(tmp_path):
    data = load_cifar("cifar10", write_cifar10(tmp_path), train=True, augment=False)
    image, label = data[1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    # DARTS cnn/utils.py: ToTensor (/255) then Normalize(CIFAR_MEAN, CIFAR_STD), green = 0.48215827
    # / 0.24348505.
    expected = (pixel(1, 1, 2, 5) / 255.0 - 0.48215827) / 0.24348505
    assert image[1, 2, 5].item() == pytest.approx(expected, abs=1e-6)
    assert int(label) == cifar10_label(1)


def test_cifar100_uses_the_fine_label(tmp_path):
    data = load_cifar("cifar100", write_cifar100(tmp_path), train=True, augment=False)
    assert data.labels.tolist() == [99, 98, 97]
    assert int(data.images[1, 1, 2, 5]) == pixel(1, 1, 2, 5)


def test_cifar100_items_are_normalised_with_cifar100_statistics(tmp_path):
    data = load_cifar("cifar100", write_cifar100(tmp_path), train=False, augment=False)
    image, label = data[0]
    expected = (pixel(3, 2, 10, 20) / 255.0 - 0.4409) / 0.2762
    assert image[2, 10, 20].item() == pytest.approx(expected, abs=1e-6)
    assert int(label) == 96
    assert (data.mean, data.std) == (CIFAR100_MEAN, CIFAR100_STD)


def test_the_folder_containing_the_tarball_folder_is_accepted(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-bin")
    write_cifar100(tmp_path / "cifar-100-binary")
    assert len(load_cifar("cifar10", tmp_path, train=True, augment=False)) == 15
    assert len(load_cifar("cifar100", tmp_path, train=True, augment=False)) == 3


# -- bad files ---------------------------------------------------------------------


def test_missing_files_are_listed_with_where_to_get_them(tmp_path):
    write_cifar10(tmp_path, skip=("data_batch_2.bin", "data_batch_4.bin"))
    with pytest.raises(DataError) as info:
        load_cifar("cifar10", tmp_path, train=True, augment=False)
    message = str(info.value)
    assert "data_batch_2.bin, data_batch_4.bin" in message and "data_batch_1.bin" not in message
    assert "CIFAR-10 binary version" in message and "www.cs.toronto.edu/~kriz/cifar.html" in message


def test_missing_test_file_is_named(tmp_path):
    write_cifar10(tmp_path, skip=("test_batch.bin",))
    with pytest.raises(DataError, match="test_batch.bin"):
        load_cifar("cifar10", tmp_path, train=False, augment=False)


def test_empty_directory_names_the_cifar100_files(tmp_path):
    with pytest.raises(DataError, match="train.bin.*CIFAR-100 binary version"):
        load_cifar("cifar100", tmp_path, train=True, augment=False)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_truncated_file_is_named(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(
        DataError, match=r"test_batch\.bin: 9218 bytes is not a whole number of CIFAR-10 records"
    ):
        load_cifar("cifar10", tmp_path, train=False, augment=False)


def test_label_out_of_range_is_rejected(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(record_bytes([10], 0))
    with pytest.raises(DataError, match="label 10 out of range 0..9"):
        load_cifar("cifar10", tmp_path, train=False, augment=False)


def test_unknown_data_set_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown CIFAR data set 'cifar1000'"):
        load_cifar("cifar1000", tmp_path, train=True, augment=False)


# -- transforms ---------------------------------------------------------------------


def test_random_crop_keeps_the_shape_and_is_a_window_of_the_zero_padded_image():
    img = torch.rand(3, 32, 32) + 1.0  # no zeros inside, so the padding is recognisable
    padded = torch.zeros(3, 40, 40)
    padded[:, 4:36, 4:36] = img
    for seed in range(5):
        out = random_crop(img, padding=4, generator=torch.Generator().manual_seed(seed))
        assert out.shape == (3, 32, 32)
        windows = [
            (top, left)
            for top in range(9)
            for left in range(9)
            if torch.equal(out, padded[:, top : top + 32, left : left + 32])
        ]
        assert len(windows) == 1


def test_random_crop_pads_with_the_per_channel_fill():
    img = torch.zeros(3, 4, 4)
    seen = set()
    for seed in range(20):
        out = random_crop(
            img, padding=4, fill=[1.0, 2.0, 3.0], generator=torch.Generator().manual_seed(seed)
        )
        for c in range(3):
            seen |= set(out[c].unique().tolist()) - {0.0}
            assert set(out[c].unique().tolist()) <= {0.0, c + 1.0}
    assert seen == {1.0, 2.0, 3.0}


def test_flip_is_an_exact_mirror():
    img = torch.rand(3, 5, 7)
    mirrored = img[:, :, list(range(6, -1, -1))]
    assert torch.equal(random_horizontal_flip(img, p=1.0), mirrored)
    assert torch.equal(random_horizontal_flip(img, p=0.0), img)


def zero_box(out: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), exclusive ends, of the zeros of a once-ones image;
    asserts the zeros fill that box exactly and are the same in every channel."""
    zeros = out == 0
    assert torch.equal(zeros, zeros[:1].expand_as(zeros))
    rows = zeros[0].any(1).nonzero().flatten()
    cols = zeros[0].any(0).nonzero().flatten()
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    assert int(zeros[0].sum()) == (bottom - top) * (right - left)
    return top, bottom, left, right


@pytest.mark.parametrize("length", [16, 5])
def test_cutout_zeroes_a_length_square_or_clips_it_at_a_border(length):
    size = 32
    interior = clipped = 0
    for seed in range(40):
        out = cutout(
            torch.ones(3, size, size), length, generator=torch.Generator().manual_seed(seed)
        )
        top, bottom, left, right = zero_box(out)
        height, width = bottom - top, right - left
        if top > 0 and left > 0 and bottom < size and right < size:
            interior += 1
            assert (height, width) == (length, length)
        else:
            assert height <= length and width <= length
            # A side shorter than length was cut by a border on its own axis.
            assert height == length or top == 0 or bottom == size
            assert width == length or left == 0 or right == size
            clipped += (height, width) != (length, length)
    assert interior and clipped  # the seeds cover both cases


def test_transforms_do_not_modify_their_input():
    img = torch.ones(3, 8, 8)
    cutout(img, 4)
    random_crop(img, 2)
    assert torch.equal(img, torch.ones(3, 8, 8))


def test_augmentation_is_reproducible_from_a_seeded_generator():
    img = torch.rand(3, 32, 32)

    def run(seed: int) -> list[torch.Tensor]:
        aug = cifar_augmentation(
            CIFAR10_MEAN,
            CIFAR10_STD,
            cutout_length=16,
            generator=torch.Generator().manual_seed(seed),
        )
        return [aug(img) for _ in range(4)]

    assert all(torch.equal(a, b) for a, b in zip(run(3), run(3)))
    assert not all(torch.equal(a, b) for a, b in zip(run(3), run(4)))


def test_augmentation_is_reproducible_from_the_global_rng():
    img = torch.rand(3, 32, 32)
    aug = Compose([random_crop, random_horizontal_flip, lambda x: cutout(x, 8)])
    torch.manual_seed(7)
    first = [aug(img) for _ in range(3)]
    torch.manual_seed(7)
    assert all(torch.equal(a, aug(img)) for a in first)


def test_load_cifar_augmentation_pads_black_and_cuts_out_to_zero(tmp_path):
    data = load_cifar(
        "cifar10",
        write_cifar10(tmp_path),
        train=True,
        augment=True,
        cutout=8,
        generator=torch.Generator().manual_seed(0),
    )
    data.images[:] = 255  # white images: any other value is padding or cutout
    white = [(1.0 - m) / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD)]
    black = [(0.0 - m) / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD)]
    seen = set()
    for i in range(len(data)):
        image, _ = data[i]
        for c in range(3):
            for v in image[c].unique().tolist():
                if abs(v - white[c]) < 1e-5:
                    seen.add("white")
                elif abs(v - black[c]) < 1e-5:
                    seen.add("black")
                else:
                    assert v == 0.0, (
                        f"channel {c} has {v}: neither the image, its padding nor cutout"
                    )
                    seen.add("cutout")
    assert seen == {"white", "black", "cutout"}


# -- the Python (pickle) version ------------------------------------------------------


def write_cifar10_python(folder: Path) -> Path:
    """cifar-10-batches-py/ with the records of write_cifar10, as pickled dicts whose
    'data' rows are the same bytes (label byte cut off) and 'labels' a list, as the
    dataset page describes (the original files were written by Python 2's cPickle)."""
    import pickle

    import numpy as np

    py = folder / "cifar-10-batches-py"
    py.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for f, name in enumerate(names):
        records = list(range(f * RECORDS_PER_FILE, (f + 1) * RECORDS_PER_FILE))
        rows = [record_bytes([cifar10_label(r)], r)[1:] for r in records]
        batch = {
            b"data": np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 3072),
            b"labels": [cifar10_label(r) for r in records],
        }
        (py / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def test_python_version_reads_the_same_images_as_the_binary_one(tmp_path):
    binary = load_cifar("cifar10", write_cifar10(tmp_path / "bin"), train=True, augment=False)
    python = load_cifar("cifar10", write_cifar10_python(tmp_path / "py"), train=True, augment=False)
    assert torch.equal(binary.images, python.images) and torch.equal(binary.labels, python.labels)
    test = load_cifar(
        "cifar10", tmp_path / "py" / "cifar-10-batches-py", train=False, augment=False
    )
    assert len(test) == RECORDS_PER_FILE


def test_python_version_that_would_run_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    write_cifar10_python(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    target.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(
        DataError, match=r"data_batch_2: not a CIFAR-10 Python-version file .*print"
    ):
        load_cifar("cifar10", tmp_path, train=True, augment=False)


def test_missing_files_mention_both_versions(tmp_path):
    write_cifar10_python(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(
        DataError, match=r"cifar-10-batches-py: data_batch_3\..*binary version.*Python"
    ):
        load_cifar("cifar10", tmp_path, train=True, augment=False)
