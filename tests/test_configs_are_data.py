"""Bundle and experiment configs are data: no lambda, no conditional and no long ``$`` expression in any YAML of
``bundles/*/configs`` and ``configs/``, beyond the model-zoo's own idioms (device choice, rank checks of the
data-parallel configs), listed here one by one. Logic belongs in named, tested functions of the package; a flag is
converted by the function that takes it, so ``as_bool`` never appears in a config."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CONFIG_FILES = sorted([*REPO.glob("bundles/*/configs/*.yaml"), *REPO.glob("configs/**/*.yaml")])
MAX_EXPRESSION = 120  # characters of one `$` expression, after YAML folds its lines

# the model-zoo's idioms (Project-MONAI/model-zoo bundles: train.json, multi_gpu_train.json), matched whole
ALLOWED = [
    re.compile(p)
    for p in (
        r"\$torch\.device\('cuda:0' if torch\.cuda\.is_available\(\) else 'cpu'\)",
        r"\$torch\.device\('cuda:' \+ os\.environ\['LOCAL_RANK'\]\) if torch\.cuda\.is_available\(\) else torch\.device\('cpu'\)",
        r"\$\[@device\] if torch\.cuda\.is_available\(\) else None",
        r"\$dist\.is_initialized\(\) or dist\.init_process_group\(backend='nccl' if torch\.cuda\.is_available\(\) else 'gloo'\)",
        r"\$torch\.cuda\.set_device\(@device\) if torch\.cuda\.is_available\(\) else None",
        r"\$@train#handlers\[: (\d+|@handlers_on_every_rank) if dist\.get_rank\(\) > 0 else None\]( \+ \[@train#time_limit\])?",
        r"\$None if dist\.get_rank\(\) > 0 else @validate#handlers",
    )
]
LAMBDA = re.compile(r"\blambda\b")
CONDITIONAL = re.compile(r"\sif\s.*\selse\s")


def expressions(node, where=""):
    """Every ``$`` expression string of a loaded config, with its id."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from expressions(v, f"{where}#{k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from expressions(v, f"{where}#{i}")
    elif isinstance(node, str) and node.startswith("$"):
        yield where, node


def violations(config) -> list[str]:
    """What makes a config logic rather than data: lambdas, conditionals, long expressions, ``as_bool``."""
    found = []
    for where, expr in expressions(config):
        if any(p.fullmatch(expr) for p in ALLOWED):
            continue
        if LAMBDA.search(expr):
            found.append(f"{where}: lambda: {expr}")
        elif CONDITIONAL.search(expr):
            found.append(f"{where}: conditional: {expr}")
        elif len(expr) > MAX_EXPRESSION:
            found.append(f"{where}: {len(expr)} characters (> {MAX_EXPRESSION}): {expr}")
        if "as_bool" in expr:
            found.append(f"{where}: as_bool in a config (the function that takes the flag converts it): {expr}")
    return found


def test_the_scan_finds_every_kind_of_logic():
    bad = {
        "a": "$lambda x: x",
        "b": {"c": ["$@x if @y else None"]},
        "d": "$" + "f(" * 70 + ")" * 70,
        "e": "$monai_hyperconv.utils.as_bool(@flag)",
        # an idiom with a changed device string is no longer the idiom
        "device": "$torch.device('cuda:1' if torch.cuda.is_available() else 'cpu')",
    }
    found = violations(bad)
    assert [f.split(":")[0] for f in found] == ["a", "b#c#0", "d", "e", "device"]
    ok = {
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "n": "$@a + 1",
        "s": "text if x else y",
    }
    assert violations(ok) == []


def test_every_config_is_scanned():
    names = {p.relative_to(REPO).as_posix() for p in CONFIG_FILES}
    for bundle in ("liver_lesion_seg", "liver_lesion_seg_3d", "ms_lesion_seg", "csmri_recon"):
        for config in ("train", "inference", "evaluate", "multi_gpu_train", "cpu_quick"):
            assert f"bundles/{bundle}/configs/{config}.yaml" in names
    assert any(n.startswith("configs/experiments/") for n in names)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_config_is_data(path):
    config = yaml.safe_load(path.read_text())
    found = violations(config)
    assert not found, f"{path.relative_to(REPO)}:\n" + "\n".join(found)
