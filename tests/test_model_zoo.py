"""The MONAI model-zoo's checks on the three bundles, offline (Project-MONAI/model-zoo ``ci/verify_bundle.py`` and
``ci/unit_tests/``, written here from their documented behaviour):

- ``ConfigWorkflow(workflow_type=...)`` + ``initialize()`` + ``check_properties()`` returns nothing for train, infer
  and evaluate (merged onto train, as the model-zoo's unit tests do), on tiny embedded data;
- ``verify_net_in_out`` on each bundle's ``network_def`` with its metadata;
- the metadata's required fields and types of ``meta_schema_20240725.json`` (the schema cannot be downloaded
  here: its required fields and types are data below) and the repository's JSON format (indent 4);
- ``ckpt_export`` (``torch.jit.script``, as the model-zoo's CI calls it) of stand-in weights in
  ``models/model.pt`` of a copy of the bundle, then ``torch.jit.load`` of the result, outputs equal to eager.
"""

import json
import os
import shutil

import pytest
import torch
from helpers import tiny_bundle_workflow
from monai.bundle import ConfigParser, ckpt_export, verify_net_in_out

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLES = ["liver_lesion_seg", "liver_lesion_seg_3d", "ms_lesion_seg", "csmri_recon"]

# meta_schema_20240725.json (MONAI's monai/bundle/meta_schema.json): top-level fields every bundle must have,
# types of the fields it defines, and the fields of a tensor in network_data_format
REQUIRED_FIELDS = [
    "schema",
    "version",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
]
FIELD_TYPES = {
    "schema": str,
    "version": str,
    "changelog": dict,
    "monai_version": str,
    "pytorch_version": str,
    "numpy_version": str,
    "required_packages_version": dict,
    "optional_packages_version": dict,
    "task": str,
    "description": str,
    "authors": str,
    "copyright": str,
    "data_source": str,
    "data_type": str,
    "image_classes": str,
    "label_classes": str,
    "pred_classes": str,
    "eval_metrics": dict,
    "intended_use": str,
    "references": list,
    "network_data_format": dict,
}
TENSOR_REQUIRED = {
    "type": str,
    "format": str,
    "num_channels": int,
    "spatial_shape": list,
    "dtype": str,
    "value_range": list,
}
TENSOR_OPTIONAL = {"is_patch_data": bool, "channel_def": dict}


def _configs(bundle):
    return os.path.join(REPO, "bundles", bundle, "configs")


def _metadata(bundle):
    with open(os.path.join(_configs(bundle), "metadata.json")) as f:
        return json.load(f)


def _stand_in_weights(bundle, root, overrides=None):
    """``models/model.pt`` of a fresh ``network_def``, as the model-zoo CI's fake weights."""
    parser = ConfigParser()
    parser.read_config(os.path.join(_configs(bundle), "inference.yaml"))
    parser.update(overrides or {})
    net = parser.get_parsed_content("network_def")
    os.makedirs(os.path.join(root, "models"), exist_ok=True)
    path = os.path.join(root, "models", "model.pt")
    torch.save(net.state_dict(), path)
    return path


WORKFLOWS = {
    "train": ("train", ["train.yaml"]),
    "evaluate": ("train", ["train.yaml", "evaluate.yaml"]),
    "infer": ("infer", ["inference.yaml"]),
}


@pytest.mark.parametrize("workflow", sorted(WORKFLOWS))
@pytest.mark.parametrize("bundle", BUNDLES)
def test_config_workflow_properties(bundle, workflow, tmp_path):
    workflow_type, files = WORKFLOWS[workflow]
    root = str(tmp_path / bundle)
    _stand_in_weights(bundle, root)  # inference / evaluation initialisation may load models/model.pt
    wf = tiny_bundle_workflow(bundle, workflow_type, files, root)
    wf.initialize()
    assert not wf.check_properties()
    # the ids the model-zoo's tools set: data and preprocessing are reached through the dataset's references
    if workflow_type == "train":
        for part in ("train", "validate"):
            # (MONAI stores references with "::" for "#")
            assert wf.parser[f"{part}#dataset#transform"].replace("::", "#") == f"@{part}#preprocessing"
            assert f"{part}#dataset#data" in wf.parser
        handlers = wf.parser["train#handlers"]
        assert [h["interval"] for h in handlers if h["_target_"] == "ValidationHandler"] == ["@val_interval"]
    else:
        assert wf.parser["dataset#transform"] == "@preprocessing"
        for key in ("bundle_root", "device", "network_def", "inferer", "output_dir"):
            assert key in wf.parser
        assert wf.parser.get_parsed_content("ckpt_dir") == root + "/models"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_and_infer_use_models_model_pt(bundle, tmp_path):
    """Every bundle trains into and infers from <bundle_root>/models/model.pt, where the model-zoo looks."""
    root = str(tmp_path)
    for config in ("train.yaml", "inference.yaml"):
        parser = ConfigParser()
        parser.read_config(os.path.join(_configs(bundle), config))
        parser.update({"bundle_root": root})
        assert parser.get_parsed_content("ckpt_dir") == root + "/models"
    parser.read_config([os.path.join(_configs(bundle), f) for f in ("train.yaml", "evaluate.yaml")])
    parser.update({"bundle_root": root})
    assert parser.get_parsed_content("checkpoint") == root + "/models/model.pt"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_verify_net_in_out(bundle, tmp_path):
    configs = _configs(bundle)
    verify_net_in_out(
        net_id="network_def",
        meta_file=os.path.join(configs, "metadata.json"),
        config_file=os.path.join(configs, "inference.yaml"),
        bundle_root=str(tmp_path),
        device="cpu",
    )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_fields_types_and_format(bundle):
    path = os.path.join(_configs(bundle), "metadata.json")
    with open(path) as f:
        text = f.read()
    meta = json.loads(text)
    assert text == json.dumps(meta, indent=4) + "\n", f"{path}: not in the model-zoo's JSON format (indent 4)"
    missing = [k for k in REQUIRED_FIELDS if k not in meta]
    assert not missing, f"{path}: required fields {missing} missing"
    wrong = {k: type(meta[k]).__name__ for k, t in FIELD_TYPES.items() if k in meta and not isinstance(meta[k], t)}
    assert not wrong, f"{path}: fields of the wrong type {wrong}"
    assert meta["schema"].endswith("/meta_schema_20240725.json")
    assert meta["version"] in meta["changelog"], f"{path}: version {meta['version']} has no changelog entry"
    assert all(isinstance(r, str) for r in meta.get("references", []))
    fmt = meta["network_data_format"]
    assert {"inputs", "outputs"} <= set(fmt)
    for kind in ("inputs", "outputs"):
        for name, tensor in fmt[kind].items():
            for key, t in TENSOR_REQUIRED.items():
                assert isinstance(tensor.get(key), t), f"{path}: {kind}#{name}#{key} should be {t.__name__}"
            for key, t in TENSOR_OPTIONAL.items():
                assert key not in tensor or isinstance(tensor[key], t), f"{path}: {kind}#{name}#{key}"
            assert all(isinstance(s, (int, str)) for s in tensor["spatial_shape"])
            assert all(isinstance(v, (int, float)) for v in tensor["value_range"])


@pytest.mark.parametrize("bundle", BUNDLES)
def test_eval_metrics_are_numbers(bundle):
    """Model-zoo bundles report their figures as numbers (from the bundle's main job), not sentences."""
    metrics = _metadata(bundle)["eval_metrics"]
    assert metrics
    for name, value in metrics.items():
        values = value.values() if isinstance(value, dict) else [value]
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), (name, value)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_model_zoo_files(bundle):
    folder = os.path.join(REPO, "bundles", bundle)
    for f in ("LICENSE", "configs/metadata.json", "configs/inference.yaml", "docs/README.md", "docs/data_license.txt"):
        assert os.path.isfile(os.path.join(folder, f)), f"{bundle}: {f} missing"
    # no weights are shipped: the README says how to produce them
    assert not os.path.exists(os.path.join(folder, "models", "model.pt"))
    with open(os.path.join(folder, "docs", "README.md")) as f:
        readme = f.read()
    assert "ships no weights" in readme and "models/model.pt" in readme


@pytest.mark.parametrize("bundle", BUNDLES)
def test_scripted_ckpt_export_loads_and_matches(bundle, tmp_path):
    """The model-zoo CI's TorchScript step: ckpt_export scripts network_def (no --use_trace) from models/model.pt
    of a copy of the bundle, and the exported file loads with torch.jit.load and gives the eager outputs."""
    copy = tmp_path / "models" / bundle
    shutil.copytree(os.path.join(REPO, "bundles", bundle), copy)
    weights = _stand_in_weights(bundle, str(copy))
    ts = copy / "models" / "verify_model.ts"
    configs = copy / "configs"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=weights,
        meta_file=str(configs / "metadata.json"),
        config_file=str(configs / "inference.yaml"),
        bundle_root=str(copy),
    )
    exported = torch.jit.load(str(ts))
    parser = ConfigParser()
    parser.read_config(str(configs / "inference.yaml"))
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(weights, weights_only=True))
    meta = _metadata(bundle)["network_data_format"]["inputs"]["image"]
    dims = len(meta["spatial_shape"])
    size = 64 if dims < 3 else 16  # a multiple of every network's downsampling (16^3: a 3D network at 32 channels)
    x = torch.randn(1, meta["num_channels"], *[size] * dims)
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(x), net.eval()(x), rtol=1e-4, atol=1e-4)
