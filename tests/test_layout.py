"""How the package is put together: no import cycle, one figure registry, rule = script = stage."""

from __future__ import annotations

import ast
import re

from .conftest import REPO

PACKAGE = REPO / "workflow" / "hyperface"


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, known: set[str]) -> set[str]:
    """The hyperface modules ``path`` imports (a ``from package import module`` counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def test_no_import_cycle():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, set(paths)) - {name} for name, path in paths.items()}
    graph = {k: {v for v in vs if not k.startswith(v + ".")} for k, vs in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_stage_modules_do_not_import_each_other():
    stages = {module_name(p) for p in (PACKAGE / "stages").glob("*.py")}
    for path in (PACKAGE / "stages").glob("*.py"):
        assert not imports_of(path, stages), f"{path.name}: shared logic belongs in the library"


def test_every_figure_has_one_drawer():
    from hyperface.reports.catalog import FIGURES
    from hyperface.stages.plots import DRAWERS

    assert sorted(DRAWERS) == sorted(f.name for f in FIGURES)
    for figure in FIGURES:
        assert (REPO / "workflow" / "report" / f"{figure.name}.rst").exists(), figure.name


# rules whose whole work is one library call: the models the demo writes or copies
LIBRARY_RULES = {
    "tiny_models": "generators.tiny",
    "packaged_weights": "generators.packaged",
}


def test_a_rule_its_script_and_its_stage_share_one_name():
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for rule in re.findall(r"^rule (\w+):", text, re.M):
        if rule == "all":
            continue
        script = (REPO / "scripts" / f"{rule}.py").read_text()
        stage = LIBRARY_RULES.get(rule, f"stages.{rule}")
        assert f"from hyperface.{stage} import" in script, f"rule {rule}: scripts/{rule}.py"
