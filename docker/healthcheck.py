"""Container health check for the Quintet image (Docker's HEALTHCHECK; stdlib only, since the
slim base has no curl).

The api answers on /health/ready, which checks PostgreSQL and Redis. The other roles (worker,
bot, migrate) have no port: they count as healthy while they run, and Docker's restart policy
deals with them when they exit.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def api_is_running() -> bool:
    # With `init: true` PID 1 is the init process, so look at every process of the container.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"uvicorn" in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def main() -> int:
    if not api_is_running():
        return 0
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
