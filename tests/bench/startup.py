"""Start-up cost: the time and memory `import app.asgi` takes beside `import litestar`, and
the resident memory of a started, idle API process (uvicorn, one worker) beside a bare
Litestar hello app on the same uvicorn.

    python -m tests.bench.startup [--runs 5]

Each import runs in a fresh interpreter (bytecode already compiled: one unmeasured run
first); the figure is the median wall time and the peak RSS (ru_maxrss) of the process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import httpx

from tests.bench.harness import uvicorn_process

PROBE = (
    "import resource, time; started = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - started, "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
)


def import_cost(module: str) -> tuple[float, float]:
    """(seconds, peak MB) of importing ``module`` in a fresh interpreter."""
    output = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(output[0]), float(output[1])


def idle_rss(target: str, *, factory: bool, ready_path: str) -> float:
    with uvicorn_process(target, factory=factory, ready_path=ready_path) as server:
        httpx.get(f"{server.url}{ready_path}")
        time.sleep(2)  # let start-up work (lifespans, first requests) settle
        return server.rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("\n### Start-up\n")
    print("| what | median | spread | peak RSS |")
    print("|---|---|---|---|")
    medians = {}
    for module in ("litestar", "app.asgi"):
        import_cost(module)  # compile and warm the page cache
        runs = [import_cost(module) for _ in range(args.runs)]
        times = [seconds for seconds, _ in runs]
        medians[module] = statistics.median(times)
        print(
            f"| `import {module}` | {medians[module]:.2f} s | {min(times):.2f}-{max(times):.2f} s "
            f"(n={len(runs)}) | {statistics.median(mb for _, mb in runs):.0f} MB |"
        )
    app_rss = idle_rss("app.asgi:create_asgi", factory=True, ready_path="/health/live")
    bare_rss = idle_rss("tests.bench._baselines:hello_app", factory=False, ready_path="/hello")
    print(f"| idle API process (uvicorn) | | | {app_rss:.0f} MB |")
    print(f"| idle bare Litestar hello (uvicorn) | | | {bare_rss:.0f} MB |")
    print(
        f"\n- `import app.asgi` is {medians['app.asgi'] / medians['litestar']:.2f}x `import litestar`"
    )


if __name__ == "__main__":
    main()
