"""The Auto-DeepLab space: network-level search over resolutions for segmentation (library only).

Liu et al., "Auto-DeepLab: Hierarchical Neural Architecture Search for
Semantic Image Segmentation", CVPR 2019.
"""

from .arch import AUTO_DEEPLAB, AutoDeepLabArch
from .aspp import ASPP
from .layout import NUM_LEVELS, check_path, incoming, levels, rate
from .network import AutoDeepLabNetwork
from .search_network import AutoDeepLabSearchNetwork, path_space_id
from .viterbi import path_score, viterbi_path

__all__ = [
    "ASPP",
    "AUTO_DEEPLAB",
    "NUM_LEVELS",
    "AutoDeepLabArch",
    "AutoDeepLabNetwork",
    "AutoDeepLabSearchNetwork",
    "check_path",
    "incoming",
    "levels",
    "path_score",
    "path_space_id",
    "rate",
    "viterbi_path",
]
