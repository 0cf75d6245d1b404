"""monai_hyperconv: hyper-convolutions (kernels generated from grid coordinates) as MONAI components.

Importing the package registers ``Conv["hyper", d]`` with MONAI's layer factory and makes every layer, block,
network and transform resolvable by its short name in MONAI bundle configs (``_target_: PaperUNet``).
"""

__version__ = "0.1.0"

from monai_hyperconv import blocks, data, layers, networks, transforms, workflows  # noqa: E402
from monai_hyperconv.convert import hyperize, materialize, resample_kernels  # noqa: E402
from monai_hyperconv.layers import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd, load_on_new_grid  # noqa: E402
from monai_hyperconv.networks import (  # noqa: E402
    FlatDilatedCNN,
    FlatHyperCNN,
    HyperSegNet,
    MultiBranchUNet,
    PaperUNet,
    receptive_field,
)

__all__ = [
    "FlatDilatedCNN",
    "FlatHyperCNN",
    "HyperConv1d",
    "HyperConv2d",
    "HyperConv3d",
    "HyperConvNd",
    "HyperSegNet",
    "MultiBranchUNet",
    "PaperUNet",
    "__version__",
    "blocks",
    "data",
    "hyperize",
    "layers",
    "load_on_new_grid",
    "materialize",
    "networks",
    "receptive_field",
    "resample_kernels",
    "transforms",
    "workflows",
]
