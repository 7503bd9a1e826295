"""The package's house: no import cycles, no compatibility shims, the layout the docs draw."""

import ast
import os
import re

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "autogan_tf")


def _modules() -> dict:
    """Dotted module name -> its source file, for every module of the package."""
    modules = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].replace(os.sep, ".")
            modules[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = \
                os.path.join(folder, name)
    return modules


def _imports(path: str, module: str, modules: dict) -> set:
    """The package modules ``module`` imports anywhere in its file (in functions too).

    ``from autogan_tf.search import beam`` imports the module ``autogan_tf.search.beam``
    when there is one, else the package ``autogan_tf.search``.
    """
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: not used by the package, but resolve it anyway
                parts = module.split(".")[:-node.level]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        else:
            continue
        found.update(n for n in names if n in modules and n != module)
    return found


def _cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_the_package_has_no_import_cycles():
    modules = _modules()
    graph = {m: _imports(path, m, modules) for m, path in modules.items()}
    assert _cycles(graph) == []
    # The walk itself finds cycles: a hand-made one is reported.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_import_edges_are_read_from_function_bodies_too():
    modules = _modules()
    edges = _imports(modules["autogan_tf.config"], "autogan_tf.config", modules)
    assert "autogan_tf.search_space" in edges  # imported inside functions only


def test_no_compatibility_shims():
    """No module hands on names it does not use ("importable from here, as before") and
    none resolves moved names lazily. The one face is the package's own: ``autogan_tf``
    hands on the search space's names (`Arch`, `parse_arch` ...), cheap to import."""
    offenders = []
    for module, path in _modules().items():
        text = open(path, encoding="utf-8").read()
        tree = ast.parse(text)
        if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            offenders.append(f"{module}: module-level __getattr__")
        if module != "autogan_tf" and re.search(r"noqa: F401", text):
            offenders.append(f"{module}: hands on names it does not use (noqa: F401)")
    assert offenders == []


@pytest.mark.parametrize("old", ["layers", "search_state", "search_log", "shared_gan",
                                 "controller", "beam", "rewards", "dynamic_reset", "derive",
                                 "export", "serving_proto", "metrics/evaluate", "recovery", "pipeline"])
def test_moved_modules_are_gone(old):
    assert not os.path.exists(os.path.join(PACKAGE, old + ".py"))
