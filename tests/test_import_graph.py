"""The core's modules import each other without cycles (module level, type-checking imports included), so
each layer can be read, tested and changed on its own; and the documented paths still work."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "mmbench"


def imports() -> dict[str, set[str]]:
    graph = {}
    for path in CORE.rglob("*.py"):
        name = ".".join(("mmbench", *path.with_suffix("").relative_to(CORE).parts)).removesuffix(".__init__")
        found = set()
        # module level, type-checking blocks included; an import inside a function is a
        # deliberate deferral (the CLI's lazy commands) and runs only when called
        top = ast.parse(path.read_text()).body
        for node in [*top, *(n for block in top if isinstance(block, ast.If) for n in block.body)]:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mmbench":
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "mmbench"}
        graph[name] = found - {name}
    return graph


def test_the_core_import_graph_is_acyclic():
    graph = imports()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            if dep not in graph:
                continue
            if state.get(dep) == "open":
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]) if dep in path else f"{module} -> {dep}")
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_documented_import_paths_still_work():
    from mmbench import api, grid, hashing, plugin, suite

    assert plugin.stable_hash is hashing.stable_hash
    for name in ("PluginConfig", "RunSpec", "Suite", "config_label", "encoder_label"):
        assert getattr(suite, name) is getattr(grid, name)
    assert api.Fusion is plugin.Fusion and api.FitContext.__module__ == "mmbench.fit_context"
