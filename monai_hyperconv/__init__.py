"""monai_hyperconv: hyper-convolutions (kernels generated from grid coordinates) as MONAI components.

Importing the package registers ``Conv["hyper", d]`` with MONAI's layer factory and makes every layer, block,
network, transform, engine and app component resolvable by its short name in MONAI bundle configs
(``_target_: PaperUNet``).

Layout, imports running one way (``tests/test_layering.py``): ``utils`` <- the core (``layers`` <- ``blocks`` <-
``networks`` <- ``convert``) <- ``transforms`` <- ``engines`` <- ``apps`` (shared helpers <- ``liver``, ``ms``,
``csmri``) <- ``analysis``.
"""

__version__ = "0.1.0"

# the task apps' components resolve by short name in bundle configs once their modules are imported
import monai_hyperconv.apps.csmri
import monai_hyperconv.apps.liver
import monai_hyperconv.apps.ms  # noqa: F401  (only imported, for the side effect above)
from monai_hyperconv import apps, blocks, engines, layers, networks, transforms, utils
from monai_hyperconv.convert import fit_report, hyperize, materialize, resample_kernels
from monai_hyperconv.layers import (
    HyperConv1d,
    HyperConv2d,
    HyperConv3d,
    HyperConvNd,
    HyperConvTranspose1d,
    HyperConvTranspose2d,
    HyperConvTranspose3d,
    HyperConvTransposeNd,
    load_on_new_grid,
)
from monai_hyperconv.networks import (
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
    "HyperConvTranspose1d",
    "HyperConvTranspose2d",
    "HyperConvTranspose3d",
    "HyperConvTransposeNd",
    "HyperSegNet",
    "MultiBranchUNet",
    "PaperUNet",
    "__version__",
    "apps",
    "blocks",
    "engines",
    "fit_report",
    "hyperize",
    "layers",
    "load_on_new_grid",
    "materialize",
    "networks",
    "receptive_field",
    "resample_kernels",
    "transforms",
    "utils",
]
