"""The shape of `src/photobot`: imports only run down the layers, and no modules import each other in a circle.

The layers, bottom to top (a module may import its own layer and the ones below):

| layer | packages and modules |
|---|---|
| foundation | `settings`, `problems`, `metrics`, `logs`, `signing`, `links`, `expiring`, `data` (the catalogue) |
| stores | `db`, `storage`, `net`, `bus`, `intake` |
| process resources | `runtime` |
| providers, notifications, outbound webhooks | `providers`, `notify`, `outbound` |
| the job pipeline | `jobs` |
| operator operations, payments | `services`, `payments` |
| HTTP | `web`, `api`, `webhooks`, `pages`, `admin` |
| composition roots | `app`, `worker`, `asgi`, `cli` |

A package importing one of its own submodules through the package (`from pkg import sub`) is an edge to that
submodule, not to the package, as Python resolves it.

The shape of `tests/`: a folder per package of `src/photobot` (top-level modules are `tests/test_<module>.py`),
plus the test kinds `chaos/` and `fuzz/` and the shared helpers in `support/`. A mirrored folder holds only
`conftest.py` and `test_*.py` files; helper code lives in `tests/support/`, and no test file imports a conftest
or another test module (fixtures reach tests through pytest, helpers through `tests.support`).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import photobot

ROOT = Path(photobot.__file__).parent
TESTS = Path(__file__).parent
TEST_KINDS = {"chaos", "fuzz", "support"}  # folders of tests/ that mirror no package
LAYERS: list[set[str]] = [
    {"settings", "problems", "metrics", "logs", "signing", "links", "data", "jsontext", "expiring", "files"},
    {"db", "storage", "net", "bus", "intake"},
    {"runtime"},
    {"providers", "notify", "outbound"},
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


def _test_folders() -> list[Path]:
    return sorted(p for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def test_test_folders_mirror_the_packages() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    strays = [f"tests/{folder.name}/" for folder in _test_folders() if folder.name not in packages | TEST_KINDS]
    assert not strays, f"test folders that match no package under src/photobot/: {strays} ({sorted(packages)})"


def test_mirrored_folders_hold_only_tests_and_fixtures() -> None:
    helpers = [
        str(path.relative_to(TESTS.parent))
        for folder in _test_folders()
        if folder.name not in TEST_KINDS
        for path in folder.rglob("*.py")
        if path.name not in ("__init__.py", "conftest.py") and not path.name.startswith("test_")
    ]
    assert not helpers, f"helper modules outside tests/support/: {helpers}"


def _imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, absolute (relative imports resolved against its package)."""
    package = list(path.relative_to(TESTS.parent).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append(module)
            found.extend(f"{module}.{alias.name}" for alias in node.names)  # `from tests.x import conftest`
    return found


def test_no_test_imports_a_conftest_or_a_test_module() -> None:
    offending = [
        f"{path.relative_to(TESTS.parent)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for module in _imported_modules(path)
        if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith(("conftest", "test_"))
    ]
    assert not offending, "import fixtures through pytest and helpers from tests.support:\n" + "\n".join(offending)
