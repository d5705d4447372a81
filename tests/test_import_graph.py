"""The package's floors: every module imports only from its own floor or below, and only the CLI
imports the CLI. Read from the source (every `import` / `from ... import`, at module level or inside
functions), so a lazy import inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vtr

ROOT = Path(vtr.__file__).parent

# Bottom to top. A module's floor is that of the longest prefix listed here.
FLOORS = [
    ("vtr", "vtr.errors", "vtr.paths", "vtr.journal", "vtr.fingerprint", "vtr.plan", "vtr.scores",
     "vtr.flops", "vtr.memory", "vtr.tiny", "vtr.archs",
     "vtr.timeline"),
    ("vtr.engine",),
    ("vtr.methods", "vtr.search", "vtr.benchmarks", "vtr.analysis", "vtr.findings", "vtr.timing",
     "vtr.runners", "vtr.published", "vtr.paper_speed"),
    ("vtr.evaluation",),
    ("vtr.testbed",),
    ("vtr.models",),
    ("vtr.experiments",),
    ("vtr.chapters", "vtr.integrations"),
    ("vtr.cli",),
]


def floor(module: str) -> int:
    best, level = -1, None
    for i, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, level = len(name), i
    if level is None:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS")
    return level


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """vtr modules `path` imports (a `from X import y` counts as X.y when X.y is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "vtr"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "vtr":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                is_module = (ROOT.parent / Path(*sub.split("."))).with_suffix(".py").exists() or \
                    (ROOT.parent / Path(*sub.split("."))).is_dir()
                out.add(sub if is_module else target)
    return out


MODULES = sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if dep.startswith("vtr.cli") and not mod.startswith("vtr.cli"):
                bad.append(f"{mod} imports the CLI ({dep})")
            elif floor(dep) > floor(mod):
                bad.append(f"{mod} (floor {floor(mod)}) imports {dep} (floor {floor(dep)})")
    return bad


def test_every_module_imports_only_downwards():
    graph = {module_name(p): imports(p) for p in MODULES}
    assert violations(graph) == []


def test_the_rule_catches_an_upward_import_and_a_cli_import():
    graph = {"vtr.engine.core": {"vtr.chapters.runs"}, "vtr.chapters.runs": {"vtr.cli.args"},
             "vtr.testbed.train": {"vtr.evaluation"}}
    assert violations(graph) == ["vtr.chapters.runs imports the CLI (vtr.cli.args)",
                                 "vtr.engine.core (floor 1) imports vtr.chapters.runs (floor 7)"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_every_module_is_on_a_floor(path):
    floor(module_name(path))


def test_no_module_shadows_the_standard_library():
    import sys

    leaves = {p.stem for p in MODULES} | {p.name for p in ROOT.rglob("*") if p.is_dir()}
    assert sorted(leaves & set(sys.stdlib_module_names)) == []
