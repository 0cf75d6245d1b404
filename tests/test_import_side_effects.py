"""Importing the package changes nothing process-wide and loads only the core; a bundle run installs the error hook.

Each check runs a fresh interpreter: this test process has long imported everything.
"""

import glob
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUNDLE_RUN_CONFIGS = sorted(
    glob.glob(os.path.join(REPO, "bundles", "*", "configs", "*.yaml"))
    + glob.glob(os.path.join(REPO, "configs", "export", "*.yaml"))
)
HOOK_ENTRY = "$monai_hyperconv.utils.install_excepthook()"
NOT_CORE = ("analysis", "apps", "engines", "transforms")


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_import_installs_no_hook():
    """sys.excepthook and torch's global optimizer hooks are as before the import (and after building a layer)."""
    out = _run(
        "import sys, torch\n"
        "from torch.optim import optimizer as o\n"
        "before = (dict(o._global_optimizer_pre_hooks), dict(o._global_optimizer_post_hooks))\n"
        "import monai_hyperconv\n"
        "from monai_hyperconv import HyperConv2d\n"
        "HyperConv2d(1, 1, 3)(torch.randn(1, 1, 5, 5))\n"
        "assert sys.excepthook is sys.__excepthook__, sys.excepthook\n"
        "after = (dict(o._global_optimizer_pre_hooks), dict(o._global_optimizer_post_hooks))\n"
        "assert after == before, (before, after)\n"
        "print('ok')\n"
    )
    assert out == "ok"


def test_import_loads_only_the_core():
    """Beyond what torch and MONAI load themselves, ``import monai_hyperconv`` (and ``from monai_hyperconv import
    HyperConv2d``) loads only its core: no apps, engines, transforms or analysis, and no third-party module beyond
    the standard library (MONAI itself already imports matplotlib, scipy and tensorboard when they are installed)."""
    out = _run(
        "import sys, torch, monai\n"
        "before = set(sys.modules)\n"
        "import monai_hyperconv\n"
        "from monai_hyperconv import HyperConv2d\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    new = out.splitlines()
    assert "monai_hyperconv.layers" in new and "monai_hyperconv.networks" in new
    foreign = [m for m in new if m.split(".")[0] not in {"monai_hyperconv", *sys.stdlib_module_names}]
    above_core = [m for m in new if m.split(".")[1:2] and m.split(".")[1] in NOT_CORE]
    assert not foreign and not above_core, (foreign, above_core)


def test_import_without_monai_first_loads_no_bundle_machinery():
    out = _run(
        "import sys\n"
        "import monai_hyperconv\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('monai_hyperconv.')))\n"
    )
    assert not [m for m in out.splitlines() if m.split(".")[1] in NOT_CORE]


def test_sub_packages_above_the_core_load_on_first_access():
    out = _run(
        "import sys\n"
        "import monai_hyperconv\n"
        "assert 'monai_hyperconv.engines' not in sys.modules\n"
        "sweep = monai_hyperconv.engines.NoiseSweep\n"
        "assert 'monai_hyperconv.engines' in sys.modules and 'engines' in dir(monai_hyperconv)\n"
        "print(sweep.__module__)\n"
    )
    assert out.startswith("monai_hyperconv.engines")
    import monai_hyperconv

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        monai_hyperconv.nothing  # noqa: B018


@pytest.mark.parametrize("path", BUNDLE_RUN_CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_every_bundle_run_installs_the_error_hook_first(path):
    """A config that defines ``initialize`` (a run entry, or one merged on top of one: a list replaces the list it
    is merged onto) starts it with the hook, so that a failing run ends with its root cause."""
    with open(path) as f:
        config = yaml.safe_load(f)
    if "initialize" not in config:
        return
    assert config["initialize"] and config["initialize"][0] == HOOK_ENTRY, path
