"""The package's layers import one way (README "Layout"); every public name has a docstring;
docstring examples run as doctests."""

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import pagewalk

SRC = Path(pagewalk.__file__).parent

#: Bottom to top: a module may import only from its own layer or the ones before it.
LAYERS = ["errors", "progress", "phys", "hw", "arch.arm64.asm", "mm", "arch.arm64.mm", "dump", "kernel", "check", "replay",
          "simulate", "demo", "matrix", "cli", ""]


def layer_of(module: str) -> int:
    """Index in LAYERS of a module path relative to the package ('' is the package itself)."""
    best = None
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + ".") or (prefix == "" and module == ""):
            if best is None or len(prefix) > len(LAYERS[best]):
                best = i
    if best is None:            # a package that only holds layers (pagewalk.arch): the lowest of them
        best = min((i for i, prefix in enumerate(LAYERS) if prefix.startswith(module + ".")), default=None)
    assert best is not None, f"pagewalk.{module} is in no layer: add it to LAYERS"
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported pagewalk module relative to the package) for every import, at any depth."""
    me = module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else list(package)
                target = ".".join(p for p in base + ([node.module] if node.module else []) if p)
            elif node.module and node.module.startswith("pagewalk"):
                target = node.module.removeprefix("pagewalk").lstrip(".")
            else:
                continue
            names = [target + "." + a.name if target else a.name for a in node.names]
            for name in names:       # `from . import x` imports the submodule x
                found.append((node.lineno, name if (SRC / name.replace(".", "/")).exists() or
                              (SRC / (name.replace(".", "/") + ".py")).exists() else target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.removeprefix("pagewalk").lstrip(".")) for a in node.names
                      if a.name.startswith("pagewalk")]
    return found


SOURCES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_down_the_layers(path):
    me = module_name(path)
    mine = layer_of(me)
    upward = [f"line {line}: pagewalk.{target or '(package)'} ({LAYERS[layer_of(target)] or 'top'})"
              for line, target in imports(path) if layer_of(target) > mine]
    assert not upward, f"pagewalk.{me} ({LAYERS[mine] or 'top'}) imports upward: " + "; ".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above can fail: a function-level import from a higher layer is found."""
    bad = SRC / "mm" / "_layer_probe.py"
    bad.write_text("def f():\n    from ..kernel.boot import start_kernel\n    return start_kernel\n")
    try:
        assert [t for _, t in imports(bad)] == ["kernel.boot"]
        assert layer_of("kernel.boot") > layer_of(module_name(bad))
    finally:
        bad.unlink()


def all_modules():
    return sorted(m.name for m in pkgutil.walk_packages(pagewalk.__path__, "pagewalk."))


@pytest.mark.parametrize("name", all_modules())
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("name", all_modules())
def test_public_names_are_documented_and_exported(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring naming what it models"
    if name.endswith("__main__"):
        return
    exported = getattr(module, "__all__", None)
    if module.__file__.endswith("__init__.py"):
        return
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    undocumented = [n for n in exported if callable(getattr(module, n)) and isinstance(getattr(module, n), type)
                    and not getattr(module, n).__doc__]
    assert not undocumented, f"{name}: classes without a docstring: {undocumented}"


def test_package_api_is_curated():
    assert "walk_page_range" in pagewalk.__all__ and "boot" in pagewalk.__all__ and "translate" in pagewalk.__all__
    assert all(hasattr(pagewalk, n) for n in pagewalk.__all__)
    assert isinstance(pagewalk.kernel, type(pagewalk)), "pagewalk.kernel is the subpackage, not shadowed"


def test_readme_examples():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0
