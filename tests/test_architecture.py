"""The shape of `src/photobot`: imports only run down the layers, and no modules import each other in a circle.

The layers, bottom to top (a module may import its own layer and the ones below):

| layer | packages and modules |
|---|---|
| foundation | `settings`, `problems`, `metrics`, `logs`, `signing`, `links`, `data` (the default catalogue) |
| stores | `db`, `storage`, `net`, `bus`, `intake` |
| process resources | `runtime` |
| providers and notifications | `providers`, `notify` |
| the job pipeline | `jobs` |
| operator operations, payments | `services`, `payments` |
| HTTP | `web`, `api`, `webhooks`, `pages`, `admin` |
| composition roots | `app`, `worker`, `asgi`, `cli` |

A package importing one of its own submodules through the package (`from pkg import sub`) is an edge to that
submodule, not to the package, as Python resolves it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import photobot

ROOT = Path(photobot.__file__).parent
LAYERS: list[set[str]] = [
    {"settings", "problems", "metrics", "logs", "signing", "links", "data"},
    {"db", "storage", "net", "bus", "intake"},
    {"runtime"},
    {"providers", "notify"},
    {"jobs"},
    {"services", "payments"},
    {"web", "api", "webhooks", "pages", "admin"},
    {"app", "worker", "asgi", "cli"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every photobot module each module imports, at any depth of the file (lazy imports count too)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("photobot"):
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t for t in submodules if t in modules] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("photobot.")]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and to the table above)")


def test_every_package_has_a_layer() -> None:
    for module in _modules():
        if module != "photobot":
            _layer(module)


def test_imports_run_down_the_layers() -> None:
    upward = [
        f"{importer} (layer {_layer(importer)}) imports {imported} (layer {_layer(imported)})"
        for importer, targets in _imports(_modules()).items()
        if importer != "photobot"
        for imported in targets
        if imported != "photobot" and _layer(imported) > _layer(importer)
    ]
    assert not upward, "imports that run back up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    graph = _imports(_modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(_modules()):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"
