"""Importing the package changes nothing process-wide and loads only the core; a bundle run installs the error hook.

Each check runs a fresh interpreter: this test process has long imported everything.
"""

import glob
import json
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
NOT_CORE = ("analysis", "apps", "data", "handlers", "transforms")


# One fresh interpreter for all checks (each start costs seconds of torch and MONAI imports): it imports torch and
# MONAI, notes what is loaded and the global hooks, imports the package, builds and runs a layer, then touches a
# sub-package above the core; it prints what each step found as JSON.
PROBE = """
import json, sys
import torch, monai
from torch.optim import optimizer as o
hooks = lambda: [sorted(map(str, o._global_optimizer_pre_hooks)), sorted(map(str, o._global_optimizer_post_hooks))]
before, hooks_before = set(sys.modules), hooks()
import monai_hyperconv
from monai_hyperconv import HyperConv2d
HyperConv2d(1, 1, 3)(torch.randn(1, 1, 5, 5))
result = {
    "new_modules": sorted(set(sys.modules) - before),
    "excepthook_untouched": sys.excepthook is sys.__excepthook__,
    "hooks_unchanged": hooks() == hooks_before,
}
sweep = monai_hyperconv.handlers.NoiseSweep
result["lazy"] = [sweep.__module__, "monai_hyperconv.handlers" in sys.modules, "handlers" in dir(monai_hyperconv)]
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_installs_no_hook(probe):
    """sys.excepthook and torch's global optimizer hooks are as before the import (and after running a layer)."""
    assert probe["excepthook_untouched"] and probe["hooks_unchanged"]


def test_import_loads_only_the_core(probe):
    """Beyond what torch and MONAI load themselves, ``import monai_hyperconv`` (and ``from monai_hyperconv import
    HyperConv2d``) loads only its core: no apps, data, handlers, transforms or analysis, and no third-party module beyond
    the standard library (MONAI itself already imports matplotlib, scipy and tensorboard when they are installed)."""
    new = probe["new_modules"]
    assert "monai_hyperconv.layers" in new and "monai_hyperconv.networks" in new
    foreign = [m for m in new if m.split(".")[0] not in {"monai_hyperconv", *sys.stdlib_module_names}]
    above_core = [m for m in new if m.split(".")[1:2] and m.split(".")[1] in NOT_CORE]
    assert not foreign and not above_core, (foreign, above_core)


def test_sub_packages_above_the_core_load_on_first_access(probe):
    module, loaded, listed = probe["lazy"]
    assert module.startswith("monai_hyperconv.handlers") and loaded and listed
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
