"""The layering of ../shared/DESIGN.md, checked on the source: every import — at a module's top or inside a
function — runs downward (or sideways within a layer, without a cycle), and data_access never imports streamlit.

    base     settings, dates, schema, scope, registry, privacy, shares, export, regions, db, routing
    rules    rules                                  what each metric is (RULES.md as SQL)
    store    summary; audit, sessions, users, grants    stored summaries and spans; access
    query    metrics, problems, views; ledger       stored or live, scope, lists; import
    actions  supervision, reports, demo
    cli      cli
    ui       ui/
    pages    pages/, app.py, serve_app.py
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    ("base", ["data_access", "data_access.settings", "data_access.dates", "data_access.schema", "data_access.scope",
              "data_access.registry", "data_access.privacy", "data_access.shares", "data_access.export",
              "data_access.regions", "data_access.db", "data_access.routing", "data_access.migrations"]),
    ("rules", ["data_access.rules"]),
    ("store", ["data_access.summary", "data_access.audit", "data_access.sessions", "data_access.users",
               "data_access.grants"]),
    ("query", ["data_access.metrics", "data_access.problems", "data_access.views", "data_access.ledger"]),
    ("actions", ["data_access.supervision", "data_access.reports", "data_access.demo"]),
    ("cli", ["data_access.cli"]),
    ("ui", ["ui"]),
    ("pages", ["pages", "app", "serve_app"]),
]


def layer_of(module: str) -> int | None:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def sources() -> dict[str, Path]:
    files = [*(ROOT / "data_access").rglob("*.py"), *(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").glob("*.py"),
             ROOT / "app.py", ROOT / "serve_app.py"]
    return {module_name(f): f for f in files if "migrations/versions" not in f.as_posix()}


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
    return {m for m in found if m in known or m.split(".")[0] == "streamlit"}


def graph() -> dict[str, set[str]]:
    src = sources()
    known = set(src)
    return {m: imports(m, p, known) for m, p in src.items()}


def test_every_module_has_a_layer():
    assert [m for m in sources() if layer_of(m) is None] == []


def test_imports_run_downward_only():
    upward = []
    for m, deps in graph().items():
        for d in deps:
            if d.startswith("streamlit"):
                continue
            if layer_of(d) > layer_of(m):
                upward.append(f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})")
    assert sorted(upward) == []


def test_no_import_cycle():
    g = {m: {d for d in deps if not d.startswith("streamlit") and d != m
             and not m.startswith(d + ".")} for m, deps in graph().items()}  # a package's own __init__ aside
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for d in sorted(g.get(m, ())):
            if state.get(d) == "open":
                cycles.append(" → ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_data_access_never_imports_streamlit():
    assert sorted(m for m, deps in graph().items()
                  if m.startswith("data_access") and any(d.split(".")[0] == "streamlit" for d in deps)) == []
