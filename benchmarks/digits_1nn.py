"""1-nearest-neighbour accuracy on gradnas' digits split, for scale.

    python benchmarks/digits_1nn.py [--seed 0]

Fits on the search data (train + val halves, what `gradnas train` trains on)
and scores the held-out test split, with the same normalisation, so its
accuracy is directly comparable to `gradnas train`'s test accuracy.
"""

from __future__ import annotations

import argparse

import torch

from gradnas.data.sources import load_splits


def stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(xs).flatten(1), torch.as_tensor([int(y) for y in ys])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    splits = load_splits("digits", seed=args.seed)
    x_train, y_train = stack(splits.train_all)
    x_test, y_test = stack(splits.test)
    nearest = torch.cdist(x_test, x_train).argmin(dim=1)  # (N_test,)
    accuracy = (y_train[nearest] == y_test).float().mean().item()
    print(
        f"1-NN test accuracy on the digits split (seed {args.seed}): {accuracy:.4f} "
        f"({len(x_train)} training, {len(x_test)} test images)"
    )


if __name__ == "__main__":
    main()
