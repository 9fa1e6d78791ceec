"""Published genotypes rebuilt at DARTS' CIFAR evaluation size give their published sizes."""

import pytest

from gradnas.genotype import DRNAS_CIFAR10, GDAS_V1, PUBLISHED
from gradnas.inspect import describe_genotype


def test_gdas_v1_matches_its_published_size():
    # D-X-Y/AutoDL-Projects genotypes.py comment on GDAS_V1: "519M, 3.36M" (MACs, weights).
    info = describe_genotype(GDAS_V1)
    assert info["params"] / 1e6 == pytest.approx(3.36, abs=0.01)
    assert info["macs"] // 1_000_000 == 519


def test_drnas_cifar10_matches_its_published_size():
    # DrNAS (Chen et al., ICLR 2021), Table 2: 4.1M weights on CIFAR-10.
    assert describe_genotype(DRNAS_CIFAR10)["params"] / 1e6 == pytest.approx(4.1, abs=0.05)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_published_genotype_fits_the_darts_space(name):
    PUBLISHED[name].validate(steps=4)
