"""monai_hyperconv: hyper-convolutions (kernels generated from grid coordinates) as MONAI components.

Importing the package registers ``Conv["hyper", d]`` with MONAI's layer factory.
"""

from monai_hyperconv.convert import hyperize, materialize
from monai_hyperconv.layers import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd

__version__ = "0.1.0"

__all__ = ["HyperConv1d", "HyperConv2d", "HyperConv3d", "HyperConvNd", "hyperize", "materialize", "__version__"]
