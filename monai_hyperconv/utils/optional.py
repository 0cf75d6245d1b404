"""Optional packages: imported where they are used, with an error that names the extra to install.

The plain install (``pip install monai-hyperconv``) carries what the layers and networks need; what only the
bundles, plots or embedded data need (sigpy, nilearn, scipy, matplotlib, tensorboard, fire) comes with an extra,
``pip install "monai-hyperconv[bundles]"``. Every import of such a package goes through :func:`require`, so a
missing one fails where it is needed, with one message format that says what needed it and what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from monai.utils import OptionalImportError

__all__ = ["DISTRIBUTION", "install_hint", "missing_package_error", "require", "require_pyplot"]

#: the project's pip name, in the install command of the error message
DISTRIBUTION = "monai-hyperconv"


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install "monai-hyperconv[<extra>]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def missing_package_error(
    module: str, extra: str = "bundles", purpose: str | None = None, reason: str = "is not installed"
) -> OptionalImportError:
    """The error for an optional package that cannot be imported: what needs it, and the install command.

    Args:
        module: the dotted module name (the package is its first part).
        extra: the project extra whose install provides it.
        purpose: what needs it, for the message (e.g. ``"Poisson-disk k-space masks"``).
        reason: why it is unavailable, e.g. the original ImportError's text.
    """
    needed_for = f", needed for {purpose}," if purpose else ""
    return OptionalImportError(
        f"The optional package {module.split('.')[0]!r}{needed_for} {reason}. Install it with: {install_hint(extra)}"
    )


def require(module: str, extra: str = "bundles", purpose: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"scipy.ndimage"``), or raise an ImportError naming the extra that installs it.

    Args:
        module: the dotted module name to import.
        extra: the project extra whose install provides it (``"bundles"``, ``"export"``, ...).
        purpose: what needs it, for the message (e.g. ``"Poisson-disk k-space masks"``).

    Raises:
        OptionalImportError: (an ImportError) when the import fails; the original error is its ``__cause__``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise missing_package_error(module, extra, purpose, reason=f"failed to import ({e})") from e


def require_pyplot(purpose: str | None = None, extra: str = "bundles") -> ModuleType:
    """``matplotlib.pyplot`` on the headless Agg backend (figures go to files only), through :func:`require`."""
    matplotlib = require("matplotlib", extra=extra, purpose=purpose)
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", extra=extra, purpose=purpose)
