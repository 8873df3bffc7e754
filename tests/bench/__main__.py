"""Run every benchmark in this folder, one after the other; each prints its own figures.

    python -m tests.bench                          # all of them (make bench)
    python -m tests.bench board_list mixed_load    # some of them
    python -m tests.bench --list

Each benchmark runs as ``python -m tests.bench.<name>`` in a process of its own: with its
own defaults (never this command's arguments), whatever the signature of its ``main``, and
a failure in one does not stop the others (the exit status says whether any failed).
``messenger_seed`` and ``harness`` are helpers, not benchmarks: seed the data first (see
tests/bench/README.md).
"""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = {"harness", "messenger_seed", "__main__"}


def benchmarks() -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.iter_modules([str(HERE)])
        if module.name not in HELPERS and not module.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and stop")
    args = parser.parse_args(argv)
    known = benchmarks()
    if args.list:
        print("\n".join(known))
        return 0
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)} (known: {', '.join(known)})")
    results: dict[str, tuple[int, float]] = {}
    for name in args.names or known:
        print(f"\n## {name}\n", flush=True)
        started = time.perf_counter()
        # Only the module's name on the command line: its argparse sees its own defaults.
        status = subprocess.call([sys.executable, "-m", f"tests.bench.{name}"])
        results[name] = (status, time.perf_counter() - started)
    print("\n## summary\n")
    for name, (status, elapsed) in results.items():
        print(
            f"{name:<22} {'ok' if status == 0 else f'FAILED (exit {status})':<18} {elapsed:6.0f} s"
        )
    return 1 if any(status for status, _ in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
