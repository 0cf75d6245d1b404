"""The one packaging step pyproject.toml cannot declare: the top-level ``configs/`` (fragments shared by the
bundles, kept at the repository's top level by the design) goes into the wheel as ``monai_hyperconv/configs``, where
``monai_hyperconv.utils.resources.shared_config_path`` reads it. Everything else lives in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

# configs/ and its sub-folders (networks, experiments, export) as data-only packages under monai_hyperconv.configs
CONFIG_PACKAGES = [
    "monai_hyperconv.configs",
    *(f"monai_hyperconv.configs.{p}" for p in find_namespace_packages("configs")),
]

setup(
    packages=[*find_packages(include=["monai_hyperconv", "monai_hyperconv.*"]), *CONFIG_PACKAGES],
    package_dir={"monai_hyperconv.configs": "configs"},
    package_data={p: ["*.yaml"] for p in CONFIG_PACKAGES},
)
