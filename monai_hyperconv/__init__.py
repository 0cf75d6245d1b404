"""monai_hyperconv: hyper-convolutions (kernels generated from grid coordinates) as MONAI components.

Importing the package loads only the core (``layers``, ``blocks``, ``networks``, ``convert``, and ``utils``) and
registers ``Conv["hyper", d]`` / ``Conv["hypertrans", d]`` with MONAI's layer factory; it changes nothing else in
the process (no ``sys.excepthook``, no optimizer hook). The machinery of the bundles (``transforms``, ``data``,
``handlers``, ``apps``, ``analysis``) is imported where it is used: a bundle config lists ``$import monai_hyperconv.apps.liver``
(etc.) in its ``imports``, which also makes that module's components resolvable by short ``_target_`` name. After
``import monai_hyperconv`` they are still reachable as attributes (``monai_hyperconv.handlers.NoiseSweep``): the
first access imports the sub-package. A bundle run installs the last-line error report itself
(:func:`monai_hyperconv.utils.install_excepthook`, the first entry of every bundle's ``initialize`` list).

Layout, imports running one way (``tests/test_layering.py``): ``utils`` <- the core (``layers`` <- ``blocks`` <-
``networks`` <- ``convert``) <- ``transforms`` <- ``data`` / ``handlers`` <- ``apps`` (shared helpers <- ``liver``,
``ms``, ``csmri``) <- ``analysis``.
"""

import importlib

__version__ = "0.1.0"

from monai_hyperconv import blocks, layers, networks, utils
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
    "blocks",
    "fit_report",
    "hyperize",
    "layers",
    "load_on_new_grid",
    "materialize",
    "networks",
    "receptive_field",
    "resample_kernels",
    "utils",
]

# imported on first attribute access, never by ``import monai_hyperconv`` (they pull the bundles' dependencies)
_LAZY_SUBPACKAGES = ("analysis", "apps", "data", "handlers", "transforms")


def __getattr__(name: str):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
