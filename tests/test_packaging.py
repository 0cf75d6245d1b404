"""Packaging: the plain install is light, optional packages are imported where used through one helper whose error
names the extra, and the shared config fragments are found (installed: package data; here: the repository's).

The installed wheel itself (fresh virtual environment, a bundle folder copied out of the repository) is checked by
``.ci/wheel_check``, which ``.ci/run`` runs.
"""

import ast
import pathlib
import re
import sys

import numpy as np
import pytest

from monai_hyperconv.utils.optional import install_hint, missing_package_error, require
from monai_hyperconv.utils.resources import shared_config_path

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "monai_hyperconv"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# import names of the core dependencies whose distribution name differs
IMPORT_NAME = {"pytorch-ignite": "ignite", "pyyaml": "yaml"}


def _names(requirements):
    """Distribution names of requirement strings, without the project's references to its own extras."""
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}
    return names - {PYPROJECT["project"]["name"]}


CORE = {IMPORT_NAME.get(n, n) for n in _names(PYPROJECT["project"]["dependencies"])}
EXTRAS = {extra: _names(reqs) for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()}


def _third_party_imports():
    """(module file, top-level name) of every import statement in the package that is not stdlib or the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "monai_hyperconv":
                    yield path.relative_to(REPO).as_posix(), top


def test_import_statements_use_only_the_core_dependencies():
    """What is imported with an import statement is in the plain install; every optional package goes through
    ``utils.optional.require`` (a call, so the import happens where it is used and fails naming the extra)."""
    assert {"monai", "torch", "numpy", "nibabel", "ignite", "yaml"} <= CORE
    outside = sorted({(path, name) for path, name in _third_party_imports() if name not in CORE})
    assert not outside, f"import these through monai_hyperconv.utils.optional.require: {outside}"


def test_bundle_packages_are_an_extra_not_core():
    heavy = {"sigpy", "nilearn", "scipy", "matplotlib", "tensorboard", "fire", "jsonschema", "tqdm"}
    assert heavy <= EXTRAS["bundles"]
    assert not heavy & CORE
    assert {"onnx", "onnxscript"} <= EXTRAS["export"]
    assert "pytest" in EXTRAS["test"] and "ruff" in EXTRAS["test"]
    # test and all pull the other extras through the project's own name
    for extra in ("test", "all"):
        own = [r for r in PYPROJECT["project"]["optional-dependencies"][extra] if r.startswith("monai-hyperconv[")]
        assert own and {"bundles", "export"} <= set(re.findall(r"\w+", own[0].split("[", 1)[1]))


def test_require_returns_the_module():
    import json

    assert require("json", purpose="x") is json


def test_require_error_names_the_extra_and_the_purpose(monkeypatch):
    # `import sigpy` / `import sigpy.mri` now raise ImportError (both: an earlier test may have cached sigpy.mri)
    monkeypatch.setitem(sys.modules, "sigpy", None)
    monkeypatch.setitem(sys.modules, "sigpy.mri", None)
    with pytest.raises(ImportError, match=re.escape('pip install "monai-hyperconv[bundles]"')) as info:
        require("sigpy.mri", purpose="Poisson-disk masks")
    assert "'sigpy'" in str(info.value) and "Poisson-disk masks" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert install_hint("export") == 'pip install "monai-hyperconv[export]"'
    assert "[export]" in str(missing_package_error("onnx", extra="export"))


@pytest.mark.parametrize(
    ("blocked", "call"),
    [
        ("sigpy.mri", "poisson"),
        ("scipy.ndimage", "synthetic_ct"),
        ("scipy.ndimage", "smooth_field"),
        ("matplotlib.pyplot", "sweep_plot"),
        ("matplotlib.pyplot", "kernel_plot"),
        ("fire", "analysis_cli"),
    ],
)
def test_call_sites_raise_the_error_naming_the_extra(monkeypatch, tmp_path, blocked, call):
    """Each place that uses an optional package fails with the extra's name when that package cannot be imported."""
    monkeypatch.setitem(sys.modules, blocked, None)
    if call == "poisson":
        from monai_hyperconv.transforms.kspace import poisson_disk_mask

        run = lambda: poisson_disk_mask((37, 41), acceleration=3.0, seed=12345)  # a shape no other test caches
    elif call == "synthetic_ct":
        from monai_hyperconv.apps.liver.synthetic_ct import synthetic_ct_volume

        run = lambda: synthetic_ct_volume(np.random.default_rng(0), size=32, num_slices=3)
    elif call == "smooth_field":
        from monai_hyperconv.apps.icbm152 import random_smooth_field

        run = lambda: random_smooth_field((16, 16), seed=0)
    elif call == "sweep_plot":
        from monai_hyperconv.handlers.noise_sweep import plot_noise_sweeps

        csv = tmp_path / "noise_sweep_a.csv"
        csv.write_text("model,noise,level,dice\na,gaussian,0.0,0.5\n")
        run = lambda: plot_noise_sweeps(str(csv), str(tmp_path / "s.png"))
    elif call == "kernel_plot":
        from monai_hyperconv.analysis.plots import plot_recapitulation

        run = lambda: plot_recapitulation([{"layer": "a", "n_l": 8}], str(tmp_path / "r.png"))
    else:
        from monai_hyperconv.analysis.__main__ import run_analysis_cli

        run = lambda: run_analysis_cli(["--help"])
    with pytest.raises(ImportError, match=re.escape('pip install "monai-hyperconv[bundles]"')):
        run()


def test_icbm152_without_nilearn_names_the_extra(monkeypatch):
    import importlib.util

    from monai_hyperconv.apps import icbm152

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nilearn" else find_spec(name, *a)
    )
    with pytest.raises(ImportError, match=re.escape("monai-hyperconv[bundles]")):
        icbm152.icbm152_path("t1")


def test_shared_configs_found_in_the_source_tree():
    """In a checkout the fragments are the repository's configs/ (the wheel ships them as package data)."""
    assert shared_config_path() == REPO / "configs"
    assert shared_config_path("networks", "unet_3x3.yaml").is_file()
    from monai_hyperconv.networks.summary import DEFAULT_CONFIG_DIR

    assert DEFAULT_CONFIG_DIR == REPO / "configs" / "networks"


def test_setup_maps_every_config_folder_into_the_package(monkeypatch):
    """setup.py's package list covers each configs/ folder that holds a fragment, so the wheel carries them all."""
    import runpy
    from unittest import mock

    import setuptools

    monkeypatch.chdir(REPO)  # setup.py runs from the project root
    with mock.patch.object(setuptools, "setup") as setup:
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    kwargs = setup.call_args.kwargs
    assert kwargs["package_dir"] == {"monai_hyperconv.configs": "configs"}
    folders = {p.parent.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml")}
    folders = {"" if f == "." else f for f in folders}  # a fragment at the top (multi_gpu.yaml): the package itself
    packaged = {
        p.removeprefix("monai_hyperconv.configs").lstrip(".").replace(".", "/")
        for p in kwargs["packages"]
        if p.startswith("monai_hyperconv.configs")
    }
    assert folders <= packaged
    assert all(kwargs["package_data"][p] == ["*.yaml"] for p in kwargs["packages"] if p.startswith("monai_hyperconv.c"))
    assert {"monai_hyperconv", "monai_hyperconv.apps.liver", "monai_hyperconv.analysis.compare"} <= set(
        kwargs["packages"]
    )


@pytest.mark.parametrize("bundle", sorted(p.name for p in (REPO / "bundles").iterdir() if p.is_dir()))
def test_bundle_metadata_lists_what_it_requires(bundle):
    """``required_packages_version`` (model-zoo's field; MONAI 1.6 maps the older ``optional_packages_version``
    to it) names monai-hyperconv and what every train.yaml uses beyond MONAI, all from the project's requirements."""
    import json

    meta = json.loads((REPO / "bundles" / bundle / "configs" / "metadata.json").read_text())
    listed = set(meta["required_packages_version"])
    assert {"monai-hyperconv", "fire", "tensorboard", "tqdm", "pytorch-ignite", "nibabel"} <= listed
    known = _names(PYPROJECT["project"]["dependencies"]) | EXTRAS["bundles"] | {"monai-hyperconv"}
    assert listed <= known, f"{bundle} lists packages the project does not require: {sorted(listed - known)}"
    assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in meta["required_packages_version"].values())
    # the packages behind the project code each bundle's configs reach
    text = "".join(p.read_text() for p in (REPO / "bundles" / bundle / "configs").glob("*.yaml"))
    needs = {"scipy", "matplotlib"}  # every bundle generates embedded data and plots its noise sweep
    if "monai_hyperconv.transforms.kspace" in text:
        needs.add("sigpy")
    if "monai_hyperconv.apps.ms" in text or "monai_hyperconv.apps.csmri" in text:
        needs.add("nilearn")  # the ICBM152 template of the embedded MS phantoms and CS-MRI slices
    assert needs <= listed, f"{bundle}: missing {sorted(needs - listed)}"
