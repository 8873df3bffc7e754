"""Modules loaded on first use rather than at import."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_loading = threading.RLock()  # one loading placeholder may touch another


class _DeferredModule(ModuleType):
    """Stands in ``sys.modules`` for a module not yet run; the first attribute it lacks runs
    the real module and forwards to it from then on. (The standard library's ``LazyLoader``
    runs the module at the next ``import name`` already: the import system reads its
    ``__spec__``, which this keeps as a plain attribute.)"""

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def _load(self) -> ModuleType:
        with _loading:
            real = self.__dict__.get("_deferred_real")
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                self.__dict__["_deferred_real"] = real
            return real


def defer_import(*names: str) -> None:
    """Make each installed, not yet imported top-level module in ``names`` run at its first use
    (an attribute, ``from name import x``, a submodule) instead of at ``import name``: for
    libraries that other libraries import at module level but this process may never use."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        placeholder = _DeferredModule(name)
        placeholder.__spec__ = spec
        sys.modules[name] = placeholder
