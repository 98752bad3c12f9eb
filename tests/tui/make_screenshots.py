"""Regenerate the app's SVGs in screenshots/ from real runs on the local cloud.

    .venv/bin/python tests/tui/make_screenshots.py

Starts a local cloud in this process (instant latency, a throw-away home), opens the
app on it at a fixed size and saves one SVG per screen of issue 6 (the browser, its
filter and facets, the pickers, "use as source", the keys). The editor, the build
monitor and the history come from make_screenshots_builds.py (they need real builds).
"""

from __future__ import annotations

import asyncio
import os
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


def fake_profiles(home: Path) -> None:
    """AWS files for the target picker's shot: profiles that can and cannot sign in (keys, an
    SSO profile signed in, one whose SSO session expired, one with only a region)."""
    import hashlib
    import json

    aws = home / ".aws"
    cache = aws / "sso" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (aws / "config").write_text(
        "[profile dev]\nregion = eu-west-1\n\n"
        "[profile prod]\nsso_session = corp\nsso_account_id = 111122223333\n"
        "sso_role_name = admin\n\n"
        "[profile sandbox]\nsso_session = lab\nsso_account_id = 444455556666\n"
        "sso_role_name = dev\n\n"
        "[profile scratch]\nregion = us-west-2\n\n"
        "[sso-session corp]\nsso_start_url = https://corp.invalid/start\nsso_region = us-east-1\n\n"
        "[sso-session lab]\nsso_start_url = https://lab.invalid/start\nsso_region = us-east-1\n",
        encoding="utf-8",
    )
    (aws / "credentials").write_text(
        "[dev]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = example\n",
        encoding="utf-8",
    )
    for session, expires in (("corp", "2999-01-01T00:00:00Z"), ("lab", "2020-01-01T00:00:00Z")):
        name = hashlib.sha1(session.encode()).hexdigest() + ".json"
        (cache / name).write_text(json.dumps({"accessToken": "x", "expiresAt": expires}))
    os.environ["HOME"] = str(home)
    os.environ["AWS_CONFIG_FILE"] = str(aws / "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(aws / "credentials")


async def shoot(cloud: object, home: Path, name: str, keys: Sequence[str]) -> Path:
    from tests.tui.browser_support import make_app, no_blink, wait_loaded

    if name == "target-picker":
        fake_profiles(home)
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
        from amibake.core.local.cloud import LocalCloud

        OUT.mkdir(exist_ok=True)
        with LocalCloud(latency="instant", data_dir=home / "cloud") as cloud:
            for name, keys in SHOTS.items():
                saved = dict(os.environ)
                path = asyncio.run(shoot(cloud, home / name, name, keys))
                os.environ.clear()
                os.environ.update(saved)  # the fake AWS files of one shot stay in it
                print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
