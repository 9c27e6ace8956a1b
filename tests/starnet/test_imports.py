"""The model packages' imports run one way: kernels < shared parts (ops, layers, fold) < models.

Read from the source with ``ast`` (every import, also those inside functions); a failure names the pair.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("starnet", "demonet")

# Layer of each module (higher may import lower, never the reverse); same-layer imports are allowed
# where listed in SAME_LAYER (then the graph must still be acyclic).
LAYERS = {
    "starnet.kernels._build": 0, "starnet.kernels.accelerate": 0, "starnet.kernels.dwconv": 0,
    "starnet.kernels.fused_mlp": 0, "starnet.kernels.fast_bn": 0, "starnet.kernels.demo_block": 0, "starnet.kernels": 0,
    "starnet.kernels.codes": 0,
    "starnet.ops": 1, "starnet.layers": 1, "starnet.fold": 1,
    "starnet.model": 2, "demonet.model": 2,
    "starnet.timm_models": 3, "demonet.timm_models": 3,  # the models in timm's registry
    "starnet": 4, "demonet": 4,  # the packages' __init__: the public API
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path):
    """(imported module, whether the import is at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base]
        else:
            continue
        for target in targets:
            yield target, id(node) in top_level


def own_modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


def resolve(target: str) -> str:
    """The known module a dotted import names (``starnet.kernels.dwconv.X`` -> ``starnet.kernels.dwconv``)."""
    while target and target not in LAYERS:
        target = target.rpartition(".")[0]
    return target


def test_every_module_has_a_layer():
    assert {name for name, _ in own_modules()} <= set(LAYERS), "add new modules to LAYERS"


def test_no_upward_imports_no_hidden_imports_no_experiments():
    problems = []
    for name, path in own_modules():
        for target, top_level in imports_of(path):
            if target.split(".")[0] == "experiments":
                problems.append(f"{name} imports {target} (models never import experiments)")
            if target.split(".")[0] not in PACKAGES:
                continue
            if not top_level:
                problems.append(f"{name} imports {target} inside a function (hides the dependency)")
            other = resolve(target)
            if other and LAYERS[other] > LAYERS[name]:
                problems.append(f"{name} (layer {LAYERS[name]}) imports {other} (layer {LAYERS[other]})")
            if name.startswith("demonet") and other == "starnet.model":
                problems.append(f"{name} reaches into the StarNet model ({other})")
    assert not problems, "\n".join(problems)


def test_import_graph_is_acyclic():
    graph = {name: {resolve(t) for t, _ in imports_of(path) if t.split(".")[0] in PACKAGES} - {name, ""}
             for name, path in own_modules()}
    for name in list(graph):  # a package's __init__ is imported along with its submodules: not an edge back
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"
    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
