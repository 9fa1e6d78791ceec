"""Upper bounds of a run's sizes, and the sizes of the data splits, checked before a run starts.

Pure Python (no torch), so the config can check them before anything is
imported or written. A size past its bound would not fail at once: it would
exhaust memory minutes later, or hang allocating it, so the bound's error
names the memory the value would need.
"""

from __future__ import annotations

SEED_MAX = 2**32 - 1  # numpy's legacy seeding (np.random.seed) takes 0..2**32-1
THREADS_MAX = 1024
BATCH_MAX = 2**16
EPOCHS_MAX = 10**6
WIDTH_MAX = 1024  # channels of the first cells (DARTS' largest published: 48)
CELLS_MAX = 256  # cells (DARTS' largest published: 20)
STEPS_MAX = 16  # intermediate nodes of a cell (DARTS: 4)
STEM_MULTIPLIER_MAX = 16  # DARTS: 3
IMAGE_SIZE_MAX = 4096  # gradnas inspect --image-size

# Samples of each data set before splitting: (search part, fixed test set or None).
# digits: sklearn's 1797 images, the test part cut from them; CIFAR: 50,000 + 10,000.
DATA_SAMPLES: dict[str, tuple[int, int | None]] = {
    "digits": (1797, None),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
}
# Side of the images in pixels, for options that need a size (the auxiliary head).
IMAGE_SIZE = {"digits": 8, "cifar10": 32, "cifar100": 32}


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.0f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MiB"


def darts_weight_bytes(C: int, layers: int, steps: int) -> float:
    """A lower bound of the float32 weights of a DARTS network, in bytes.

    Each of a cell's ``steps * (steps + 3) / 2`` edges holds at least a 3x3
    separable convolution, whose two pointwise convolutions alone have
    ``2 * c * c`` weights at the cell's width ``c >= C``.
    """
    edges = steps * (steps + 3) // 2
    return 4.0 * layers * edges * 2 * C * C


def split_sizes(name: str, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """The sizes of the train / val / test splits of data set ``name``.

    The same rounding as :mod:`gradnas.data` (digits: the test part is cut
    first, then val from the rest; CIFAR: val from the 50,000 training images,
    the test set fixed); a test pins the two to each other.
    """
    n, fixed_test = DATA_SAMPLES[name]
    n_test = fixed_test if fixed_test is not None else round(test_fraction * n)
    search = n if fixed_test is not None else n - n_test
    n_val = round(val_fraction * search)
    return {"train": search - n_val, "val": n_val, "test": n_test}
