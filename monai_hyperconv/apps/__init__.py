"""Task apps: one sub-package per workflow (the model-zoo bundles' own code), on top of shared app helpers.

- :mod:`~monai_hyperconv.apps.liver`: LiTS layout and datalists, the synthetic CT generator.
- :mod:`~monai_hyperconv.apps.ms`: ISBI 2015 layout and folds, MRI phantoms, orthogonal-plane slicing and
  inferer, fold reports.
- :mod:`~monai_hyperconv.apps.csmri`: T1 slice discovery / split / datalist, embedded ICBM152 slices, slice
  loading, test-set evaluation and plots.

Shared by them (this package's own modules): the embedded-data marker check (:mod:`.embedded`) and the ICBM152
template loader (:mod:`.icbm152`); the datalist JSON IO they use is :mod:`monai_hyperconv.data.datalist`. The task
sub-packages import these and the layers below, never each other (``tests/test_layering.py``).

Also here: :mod:`.warm_start` (:func:`~monai_hyperconv.apps.warm_start.hyperize_checkpoint`), the warm-start recipe
``configs/warm_start/hyperize_fit.yaml`` builds its network with: a trained regular network's checkpoint turned into
a fitted hyper network.
"""

from monai_hyperconv.apps.embedded import warn_if_generated_differently
from monai_hyperconv.apps.icbm152 import (
    ICBM152_FILES,
    ICBM152Template,
    icbm152_path,
    load_icbm152,
    random_bias_field,
    random_deform,
    random_displacement_field,
    random_smooth_field,
    warp,
)

__all__ = [
    "ICBM152_FILES",
    "ICBM152Template",
    "icbm152_path",
    "load_icbm152",
    "random_bias_field",
    "random_deform",
    "random_displacement_field",
    "random_smooth_field",
    "warn_if_generated_differently",
    "warp",
]
