"""Imports run one way through the package's layers, and no two sub-packages import each other.

Every module's imports are read from its source (``ast``), including imports inside functions: a lazy import
upward is still an upward dependency. A module belongs to the unit of its sub-package (``handlers``, ``apps``,
``apps.ms``...); a unit may import its own modules and units of lower layers only.
"""

import ast
import pathlib

import pytest

PACKAGE = "monai_hyperconv"
ROOT = pathlib.Path(__file__).resolve().parents[1] / PACKAGE

# Lowest first. A unit may import units of strictly lower layers; units of one layer may not import each other.
LAYERS = (
    ("utils",),
    ("layers",),
    ("blocks",),
    ("networks",),
    ("convert",),
    ("transforms",),
    ("data", "handlers"),  # datasets and datalists; ignite / MONAI handlers
    ("apps",),  # the helpers the task apps share (datalist IO, embedded-data marker, ICBM152 template)
    ("apps.liver", "apps.ms", "apps.csmri"),
    ("analysis",),
)
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}
CORE = {"layers", "blocks", "networks", "convert"}
# the package's own __init__ imports everything, so that short `_target_` names resolve in bundle configs
TOP = "__init__"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def unit_of(module: str) -> str:
    """The layering unit of a dotted module name inside the package (``apps.ms`` for ``...apps.ms.isbi``)."""
    parts = module.split(".")[1:]
    if not parts:
        return TOP
    if parts[0] == "apps" and len(parts) > 1 and (ROOT / "apps" / parts[1]).is_dir():
        return f"apps.{parts[1]}"
    return parts[0]


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names of the package's modules (or their attributes) that ``module`` imports."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= {f"{target}.{a.name}" for a in node.names} if target == PACKAGE else {target}
    return {n for n in found if n == PACKAGE or n.startswith(PACKAGE + ".")}


def import_graph() -> dict[str, dict[str, set[str]]]:
    """``{unit: {imported unit: {"module -> imported name", ...}}}`` over every module of the package."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        src = unit_of(module)
        for name in _imported(tree, module, path.name == "__init__.py"):
            dst = unit_of(name)
            if dst != src:
                graph.setdefault(src, {}).setdefault(dst, set()).add(f"{module} -> {name}")
        graph.setdefault(src, {})
    return graph


def test_every_unit_has_a_layer():
    units = set(import_graph()) - {TOP}
    assert units and units <= set(LEVEL), f"add {sorted(units - set(LEVEL))} to LAYERS in {__file__}"


def test_no_upward_or_sideways_import():
    bad = [
        f"{edge}: {src} (layer {LEVEL[src]}) imports {dst} (layer {LEVEL.get(dst, '?')}); only lower layers are allowed"
        for src, targets in import_graph().items()
        if src != TOP
        for dst, edges in targets.items()
        if dst == TOP or LEVEL.get(dst, len(LAYERS)) >= LEVEL[src]
        for edge in sorted(edges)
    ]
    assert not bad, "\n".join(bad)


def test_no_circle_between_units():
    graph = {src: set(targets) for src, targets in import_graph().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(unit, path):
        state[unit] = 1
        for dst in sorted(graph.get(unit, ())):
            if state.get(dst) == 1:
                pytest.fail("import circle: " + " -> ".join([*path[path.index(dst) :], dst]))
            if dst not in state:
                visit(dst, [*path, dst])
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])


def test_core_imports_only_torch_monai_and_utils():
    """The core (layers, blocks, networks, convert) imports nothing of the package above it, not even lazily."""
    graph = import_graph()
    bad = [
        e for unit in CORE for dst, edges in graph.get(unit, {}).items() if dst not in CORE | {"utils"} for e in edges
    ]
    assert not bad, "\n".join(sorted(bad))


def test_the_checks_catch_an_upward_import(tmp_path):
    """The parser sees lazy and relative imports, so the checks above can fail."""
    source = "def f():\n    from monai_hyperconv.handlers import NoiseSweep\n\nfrom ..apps import ms\n"
    tree = ast.parse(source)
    names = _imported(tree, "monai_hyperconv.layers.hyperconv", is_package=False)
    assert names == {"monai_hyperconv.handlers", "monai_hyperconv.apps"}
    assert {unit_of(n) for n in names} == {"handlers", "apps"}
    assert unit_of("monai_hyperconv.apps.ms.isbi") == "apps.ms" and unit_of("monai_hyperconv.apps.embedded") == "apps"
    assert all(LEVEL[unit_of(n)] > LEVEL["layers"] for n in names)


# Private attributes of other objects the package still reads, each with its reason (issue 25: MONAI's, ignite's and
# torch's parts through their public APIs only).
ALLOWED_PRIVATE = {
    "_version": "torch's tensor version counter: the only signal of an in-place edit without a process-wide hook",
    "_exit": "os._exit is the public way to end a process without running cleanup",
}


def _foreign_private_attributes(source: str) -> list[tuple[int, str]]:
    """``obj._name`` where ``obj`` is not ``self`` / ``cls`` / ``super()``, and ``from x import _name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("_") and a.name != "__future__"]
    return sorted(found)


def test_no_private_attribute_of_another_object_or_module():
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line}: {name}"
        for path in sorted(ROOT.rglob("*.py"))
        for line, name in _foreign_private_attributes(path.read_text())
        if name not in ALLOWED_PRIVATE
    ]
    assert not offenders, "private names used across objects or modules:\n" + "\n".join(offenders)


def test_the_private_attribute_check_catches_one():
    assert _foreign_private_attributes("loader._iterator = None\nfrom a import _b\nself._c = super()._d()") == [
        (1, "_iterator"),
        (2, "_b"),
    ]
