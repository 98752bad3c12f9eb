"""Regenerate the app's SVGs in screenshots/ from real runs on the local cloud.

    .venv/bin/python tests/tui/make_screenshots.py

Starts a local cloud in this process (instant latency, a throw-away home), opens the
app on it at a fixed size and saves one SVG per screen of issue 6 (the browser, its
filter and facets, the pickers, "use as source", the keys). The editor, the build
monitor and the history come from make_screenshots_builds.py (they need real builds).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "screenshots"
SIZE = (130, 36)

#: file name -> keys pressed after the browser has loaded.
SHOTS: dict[str, Sequence[str]] = {
    "browser": ("down", "down"),
    "browser-filter": ("slash", *"*jammy-22.04-arm64-server-*", "enter", "a", "x"),
    "browser-fuzzy": ("slash", *"nblarm64", "enter"),
    "region-picker": ("g", *"eu-"),
    "owner-picker": ("o",),
    "target-picker": ("t",),
    "use-as-source": ("slash", *"noble amd64 server", "enter", "u"),
    "keys": ("question_mark",),
}


async def shoot(cloud: object, home: Path, name: str, keys: Sequence[str]) -> Path:
    from tests.tui.browser_support import make_app, no_blink, wait_loaded

    app = make_app(cloud, home)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        if keys:
            await pilot.press(*keys)
        await pilot.pause(0.3)
        no_blink(app)
        app.clear_notifications()
        await pilot.pause()
        path = OUT / f"{name}.svg"
        app.save_screenshot(str(path))
    return path


def main() -> None:
    from tests.isolation import isolate

    with tempfile.TemporaryDirectory(prefix="amibake-shots-") as tmp:
        home = Path(tmp)
        isolate(home)
        from core.local.cloud import LocalCloud

        OUT.mkdir(exist_ok=True)
        with LocalCloud(latency="instant", data_dir=home / "cloud") as cloud:
            for name, keys in SHOTS.items():
                path = asyncio.run(shoot(cloud, home / name, name, keys))
                print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
