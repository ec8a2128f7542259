"""The package is a stack of layers: a module imports only from its own layer and the layers below,
and no modules import each other in a cycle. Every import counts, wherever it stands (inside a
function, under ``TYPE_CHECKING``): a lazy import hides a tie from start-up, not from the design.
README "Layout" shows the same table."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import vaekit

PACKAGE = Path(vaekit.__file__).parent

# lowest first; a module belongs to the layer of the longest prefix that names it
LAYERS = [
    # foundations
    "vaekit.version vaekit.noise vaekit.schema vaekit.optional vaekit.plugins vaekit.registry vaekit.limits "
    "vaekit.device",
    "vaekit.config",
    "vaekit.io",  # files vaekit writes: weights, checkpoints, run folders, model cards, the Hub
    "vaekit.data vaekit.features",
    "vaekit.defaults",  # settings chosen from the data
    "vaekit.likelihoods",
    "vaekit.models",
    "vaekit.pretrained vaekit.export",  # trained models from disk, and out to other formats
    "vaekit.engine",  # precision, gradient sync, clipping, EMA, schedules, optimisers
    "vaekit.objectives",
    "vaekit.evaluation vaekit.explore",
    "vaekit.training",
    "vaekit.api",
    "vaekit vaekit.web vaekit.commands vaekit.cli vaekit.__main__",  # the faces: package, explorer, CLI
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["vaekit", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(module: str, path: Path, known: set[str]) -> dict[str, int]:
    """The package's modules that ``module`` imports (anywhere in the file), with a line of each."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.setdefault(target, node.lineno)
    return found


def layer_of(module: str) -> int | None:
    best, length = None, -1
    for index, layer in enumerate(LAYERS):
        for prefix in layer.split():
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def import_graph() -> dict[str, dict[str, int]]:
    names = module_names()
    return {module: imports_of(module, path, set(names)) for module, path in names.items()}


def test_every_module_has_a_layer():
    def placed(module: str) -> bool:  # the bare package prefix matches every name: it does not place one
        prefixes = [p for layer in LAYERS for p in layer.split() if p != "vaekit"]
        return module == "vaekit" or any(module == p or module.startswith(p + ".") for p in prefixes)

    unplaced = [module for module in module_names() if not placed(module)]
    assert not unplaced, f"modules with no layer (add them to LAYERS and README Layout): {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own():
    names = module_names()
    upward = [
        f"{names[module].relative_to(PACKAGE.parent)}:{line} {module} (layer {layer_of(module)}) -> "
        f"{target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target, line in targets.items()
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_modules_import_each_other_in_a_cycle():
    graph = {module: set(targets) for module, targets in import_graph().items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vaekit.api import train\n"
        "def f():\n    from vaekit.models import base\n    import vaekit.cli\n"
    )
    known = {"vaekit", "vaekit.api", "vaekit.models", "vaekit.models.base", "vaekit.cli"}
    assert imports_of("vaekit.data.m", source, known) == {"vaekit.api": 3, "vaekit.models.base": 5, "vaekit.cli": 6}
