"""A user's supernet, written outside the gradnas package, for the custom-space tests.

Two blocks each choose their convolution (or a skip), and a merge edge
chooses which two of the earlier outputs it sums.
"""

from torch import nn

from gradnas.mutables import DifferentiableEdge, DifferentiableOP


def conv(C: int, k: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(C, C, k, padding=k // 2, bias=False), nn.BatchNorm2d(C), nn.ReLU()
    )


def block(C: int, name: str) -> DifferentiableOP:
    return DifferentiableOP(
        {"conv3x3": conv(C, 3), "conv5x5": conv(C, 5), "skip": nn.Identity()}, name
    )


class TinyNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, C: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        self.block1 = block(C, "block1")
        self.block2 = block(C, "block2")
        self.merge = DifferentiableEdge(
            {"stem": nn.Identity(), "block1": nn.Identity(), "block2": nn.Identity()},
            "merge",
            with_arch_param=True,
            num_chosen=2,
        )
        self.head = nn.Linear(C, num_classes)

    def forward(self, x):
        s = self.stem(x)
        b1 = self.block1(s)
        b2 = self.block2(b1)
        return self.head(self.merge([s, b1, b2]).mean((2, 3)))  # (N, C, H, W) -> (N, C)


def build(in_channels: int, num_classes: int) -> nn.Module:
    return TinyNet(in_channels, num_classes)


def raises(in_channels: int, num_classes: int) -> nn.Module:
    raise RuntimeError("no GPU in this factory")


def not_a_module(in_channels: int, num_classes: int) -> object:
    return 42


def no_mutable(in_channels: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 64, num_classes))


def wrong_shape(in_channels: int, num_classes: int) -> nn.Module:
    return TinyNet(in_channels + 1, num_classes)  # expects one channel more than the data has


NOT_CALLABLE = 3
