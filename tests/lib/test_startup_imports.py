"""Start-up loads only what serving needs: libraries used on some paths only (python-socketio's
client transports, Pillow, httpx) load at their first use."""

import subprocess
import sys

DEFERRED = ("aiohttp", "requests", "PIL.Image", "httpx")

PROBE = (
    "import sys, types, app.asgi; "
    "loaded = [name for name in {names!r} "
    "if type(sys.modules.get(name)) is types.ModuleType]; print(','.join(loaded))"
)


def test_importing_the_application_leaves_path_specific_libraries_unloaded() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(names=DEFERRED)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == ""


def test_a_deferred_library_loads_at_its_first_use() -> None:
    probe = (
        "import sys, app.asgi, socketio; "
        "client = socketio.AsyncClient(); import aiohttp; "
        "print(aiohttp.ClientTimeout(total=1).total)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "1"
