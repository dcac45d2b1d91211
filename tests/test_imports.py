"""The package's import graph, read from the source (AST): no circles, and the floors point down
(entry points → method / report / bench → models / data)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cyclesem"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module → the cyclesem modules it imports (TYPE_CHECKING-only imports count too: they are a design
    dependency, and a circle through them is still one)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from cyclesem.data.synthetic import layout` imports the submodule layout
                imported |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                             for a in node.names}
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return [*path[path.index(child):], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        state[node], _ = 2, path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " → ".join(cycle)


# the floors, bottom up: networks and data; the method; what every command runs on (config, pre-flight,
# checkpoints, inference, device); study bookkeeping; the report and bench command packages; the commands
TOP = 5  # cyclesem.<command>: the top floor lists the commands and nothing else
# gpu_check is a command package on the top floor: its checks run cyclesem.train beside it
FLOOR = {"models": 0, "data": 0, "method": 1, "runtime": 2, "study": 3, "report": 4, "bench": 4, "gpu_check": TOP}


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOOR.get(parts[1], TOP) if len(parts) > 1 else TOP


@pytest.mark.parametrize("lower", sorted(FLOOR))
def test_floors_import_nothing_above_them(lower):
    graph = import_graph()
    upward = {(m, d) for m, deps in graph.items() if m.startswith(f"cyclesem.{lower}.") or m == f"cyclesem.{lower}"
              for d in deps if floor(d) > floor(m)}
    assert not upward, upward


def test_the_top_floor_holds_only_commands():
    """`ls cyclesem` reads as the commands plus the library's floors: every top-level module is runnable."""
    top = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert top, "no commands found"
    not_commands = [p.name for p in top if 'if __name__ == "__main__"' not in p.read_text()]
    assert not not_commands, f"top-level modules that are not commands: {not_commands}"
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(FLOOR), f"packages without a floor: {packages - set(FLOOR)}"


def test_floor_reads_the_new_packages():
    assert floor("cyclesem.runtime.config") == 2 and floor("cyclesem.study.sweep") == 3
    assert floor("cyclesem.bench.steps") == 4 and floor("cyclesem.train") == TOP


def test_the_method_does_not_import_the_hydra_schema():
    graph = import_graph()
    assert not {m for m, deps in graph.items() if m.startswith("cyclesem.method") and "cyclesem.runtime.config" in deps}
