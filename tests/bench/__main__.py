"""Run every benchmark module in this folder (each prints its own table)."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
from pathlib import Path

SKIP = {"harness", "__main__"}


def main() -> None:
    only = set(sys.argv[1:])
    for module_info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module_info.name in SKIP or (only and module_info.name not in only):
            continue
        module = importlib.import_module(f"tests.bench.{module_info.name}")
        print(f"\n## {module_info.name}", flush=True)
        result = module.main()
        if asyncio.iscoroutine(result):
            asyncio.run(result)


if __name__ == "__main__":
    main()
