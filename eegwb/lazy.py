"""Lazy public names for a package's `__init__.py`: `from eegwb.data import EEGDataset` works,
while `import eegwb.data` stays cheap (a submodule is imported when one of its names is
first used, as PEP 562 allows). Each `__init__` lists its names once, in `EXPORTS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`, whose public `name` lives in the submodule
    `exports[name]`."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
