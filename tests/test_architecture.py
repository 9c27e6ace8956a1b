"""The layers of docs/architecture.md, checked on the source: every module of starnet, demonet, experiments,
run.py and scripts is parsed with ``ast`` (imports inside functions included) and the import graph must have
no circle, and no import may run from a lower layer to a higher one. A failure names the modules."""
import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

from tests.conftest import ROOT

PACKAGES = ("starnet", "demonet", "experiments")

# Lowest first. A module belongs to the layer of its longest matching prefix (a package covers its modules).
LAYERS = [
    ("kernels", ("starnet.kernels",)),                                   # C++ kernels and accelerate()
    ("nn parts", ("starnet.ops", "starnet.layers", "starnet.fold")),     # fusion registry, layers, folding
    ("models", ("starnet", "demonet")),                                  # StarNet, DemoNet (+ old-path aliases)
    ("base", ("experiments", "experiments.errors", "experiments.config")),
    ("records", ("experiments.records",)),                               # metrics.json, names, Tracker
    ("data", ("experiments.data",)),
    ("train", ("experiments.train",)),                                   # device, DDP, model from config, Trainer
    ("analysis", ("experiments.analysis",)),                             # sweep dirs -> tables, figures, W&B
    ("tasks", ("experiments.tasks", "experiments.detect")),              # experiments.detect: old-path aliases
    ("tools", ("experiments.tools",)),                                   # what scripts share
    ("entry", ("experiments.entry", "experiments.hydra_callbacks", "run")),
    ("scripts", ("scripts",)),
]


def module_files() -> Dict[str, Path]:
    files = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    files["run"] = ROOT / "run.py"
    for path in sorted((ROOT / "scripts").glob("*.py")):
        files[f"scripts.{path.stem}"] = path
    return files


def _dynamic_import_target(node: ast.Call):
    """``importlib.import_module(...)``: its constant argument, "" for a computed one, None for other calls."""
    f = node.func
    if isinstance(f, ast.Attribute) and f.attr == "import_module" and isinstance(f.value, ast.Name) \
            and f.value.id == "importlib":
        arg = node.args[0] if node.args else None
        return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
    return None


def imports_of(name: str, path: Path, modules: Set[str]) -> Dict[str, int]:
    """Internal modules ``name`` imports -> the line of the first such import ("" key: by computed name)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: Dict[str, int] = {}
    for node in ast.walk(tree):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        elif isinstance(node, ast.Call):
            target = _dynamic_import_target(node)
            if target == "":
                found.setdefault("", node.lineno)
            elif target:
                targets = [target]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.setdefault(target, node.lineno)
    return found


@pytest.fixture(scope="module")
def graph():
    files = module_files()
    return files, {m: imports_of(m, p, set(files)) for m, p in files.items()}


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    assert best is not None, f"{module} has no layer: add it to LAYERS in tests/test_architecture.py"
    return best


def test_every_module_has_a_layer(graph):
    files, _ = graph
    assert len(files) > 40
    for module in files:
        layer_of(module)


def test_no_import_runs_upward(graph):
    files, edges = graph
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}, {files[a].relative_to(ROOT)}:{line}) imports "
              f"{b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in sorted(edges.items()) for b, line in targets.items()
              if b and layer_of(b) > layer_of(a)]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_circles(graph):
    _, edges = graph
    succ = {m: [t for t in targets if t] for m, targets in edges.items()}
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    circles: List[List[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in succ:
        if module not in index:
            visit(module)
    pairs = [f"{a} -> {b}" for c in circles for a in c for b in succ[a] if b in c]
    assert not circles, f"import circles: {circles}\nedges inside them: " + "; ".join(pairs)


# The one import by a computed name: a fusion op the user names by its import path (op=mypkg.ops:my_op),
# which imports the user's module, never one of ours (those are imported by name, above).
USER_CODE_IMPORTS = {"starnet.ops"}


def test_nothing_is_imported_by_a_computed_name(graph):
    """Tasks are registered (experiments/tasks/__init__.py), not looked up with importlib by name."""
    files, edges = graph
    dynamic = [f"{files[m].relative_to(ROOT)}:{targets['']}" for m, targets in edges.items()
               if "" in targets and m not in USER_CODE_IMPORTS]
    assert not dynamic, "importlib.import_module with a computed name: " + ", ".join(dynamic)


def _edits_sys_path(node: ast.AST) -> bool:
    """``sys.path.insert(...)``, ``sys.path.append(...)``, ``sys.path[...] = ...`` and the like."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        target = node.func.value
        return isinstance(target, ast.Attribute) and target.attr == "path" and isinstance(target.value, ast.Name) \
            and target.value.id == "sys" and node.func.attr in ("insert", "append", "extend")
    return False


def test_no_sys_path_edits_in_scripts_or_tests():
    """The package is installed (pip install -e .): scripts and tests import it as it is."""
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno}"
                 for folder in ("scripts", "tests") for path in sorted((ROOT / folder).rglob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text(), str(path))) if _edits_sys_path(node)]
    assert not offenders, "sys.path edited in: " + ", ".join(offenders)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """A self-check of ``imports_of`` on a made-up module."""
    path = tmp_path / "mod.py"
    path.write_text("from ..records import Tracker\nfrom . import base\n\n\ndef f():\n"
                    "    from experiments.analysis import aggregate\n    import importlib\n"
                    "    importlib.import_module(f'experiments.{1}')\n")
    modules = {"experiments.records", "experiments.tasks.base", "experiments.analysis", "experiments.tasks.mod"}
    found = imports_of("experiments.tasks.mod", path, modules)
    assert set(found) == {"experiments.records", "experiments.tasks.base", "experiments.analysis", ""}
    assert layer_of("experiments.tasks.mod") > layer_of("experiments.analysis") > layer_of("experiments.records")
