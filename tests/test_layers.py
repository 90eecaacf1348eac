"""Packages import downward only (docs/architecture.md): every `import` in eegwb/, at module
top or inside a function, is checked against the layer table below.

A lower layer that needs a higher one's behaviour takes it as an argument (a callable, a
hook), as `train` takes the autopsy; it never imports it, not even inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eegwb"

# Layer of each top-level module or package of eegwb; a module may import its own layer's
# package and any lower layer. `validation` sits on `evaluation`: the shortcut audit scores
# with its metrics (AUROC, the participant bootstrap) rather than a second copy of them.
LAYERS = {
    "errors": 0,
    "lazy": 0,
    "atomic": 0,
    "locks": 0,
    "config": 0,
    "report_html": 0,  # packs marimo's viewer into an export; imports atomic and errors
    "data": 1,
    "kernels": 2,
    "model": 3,
    "evaluation": 4,
    "validation": 5,
    "train": 6,
    "experiments": 7,
    "commands": 8,
    "notebook": 8,
    "cli": 8,
    "__main__": 8,
    "__init__": 8,
}
SIBLINGS: set[frozenset[str]] = set()  # same-layer packages that may not import each other


def _part(module: str) -> str | None:
    """'eegwb.train.pretrain' -> 'train'; None for a module outside eegwb."""
    parts = module.split(".")
    if parts[0] != "eegwb":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported eegwb module) for every import statement in the file, anywhere."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from eegwb import data` imports the package eegwb.data
            names = (
                [f"{node.module}.{a.name}" for a in node.names] if node.module == "eegwb" else []
            )
            out += [(node.lineno, name) for name in names] or [(node.lineno, node.module)]
    return [(line, name) for line, name in out if name.split(".")[0] == "eegwb"]


def layer_violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        here = _part(".".join(rel.with_suffix("").parts))
        if here not in LAYERS:
            found.append(f"{rel}: top-level module {here!r} has no layer in tests/test_layers.py")
            continue
        for line, name in _imports(path):
            there = _part(name)
            if there == here:
                continue
            if there not in LAYERS:
                found.append(f"{rel}:{line}: imports {name}, which has no layer")
            elif LAYERS[there] > LAYERS[here]:
                found.append(
                    f"{rel}:{line}: {here} (layer {LAYERS[here]}) imports {name} "
                    f"(layer {LAYERS[there]}, higher)"
                )
            elif frozenset({here, there}) in SIBLINGS:
                found.append(f"{rel}:{line}: {here} imports {name}; the two are independent")
    return found


def test_packages_import_only_downward() -> None:
    violations = layer_violations()
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_the_check_sees_function_local_imports(tmp_path: Path) -> None:
    # The walk reaches into functions: a local `from eegwb.experiments...` in train counts.
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from eegwb.experiments.autopsy import autopsy_once\n")
    assert _imports(source) == [(2, "eegwb.experiments.autopsy")]


@pytest.mark.parametrize(
    "package", ["data", "evaluation", "validation", "train", "experiments", "model", "kernels"]
)
def test_each_package_names_its_public_api(package: str) -> None:
    import importlib

    module = importlib.import_module(f"eegwb.{package}")
    assert module.__all__, f"eegwb.{package} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"eegwb.{package}.__all__ names what it does not have: {missing}"


def test_import_eegwb_data_stays_cheap() -> None:
    # The lazy __init__: importing the package loads none of its modules (nor torch).
    import subprocess
    import sys

    code = (
        "import sys, eegwb.data; print(sorted(m for m in sys.modules "
        "if m.startswith('eegwb.data.') or m == 'torch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["data", "evaluation", "validation", "train", "experiments"])
def test_lazy_exports_and_all_agree(package: str) -> None:
    import importlib

    module = importlib.import_module(f"eegwb.{package}")
    assert sorted(module.__all__) == sorted(module.EXPORTS)
