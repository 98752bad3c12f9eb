"""Screenshots of the editor, a running build, a cancel in progress, the history and the
failed-step panel (--on-error ask).

``.venv/bin/python tests/tui/make_screenshots_builds.py [OUT_DIR]`` (default: screenshots/).
Real runs of the app: the builds go to an in-process local cloud on the ``fast`` profile, so the
running and cancelling states last long enough to be caught.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZE = (140, 42)


async def main(out: Path) -> None:
    from amibake.core.examples import EXAMPLES_DIR
    from amibake.core.local.cloud import LocalCloud
    from amibake.core.templates import load
    from amibake.tui.build_runner import runs
    from amibake.tui.modals.failed_step import FailedStepModal
    from amibake.tui.screens.editor import EditorScreen
    from amibake.tui.screens.history import HistoryScreen
    from amibake.tui.screens.monitor import MonitorScreen
    from tests.tui.browser_support import make_app, wait_loaded
    from tests.tui.builds_support import wait_until

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    shutil.copytree(EXAMPLES_DIR, work / "examples", ignore=shutil.ignore_patterns("*.py"))
    template = work / "examples" / "demo.pkr.hcl"
    os.chdir(work)  # the demo's manifest post-processor writes to the working directory
    template.write_text(
        template.read_text().replace('"ls -l /opt/demo",', '"ls -l /opt/demo", "sleep 6",'),
        encoding="utf-8",
    )
    with LocalCloud(latency="fast", data_dir=work / "cloud") as cloud:
        app = make_app(cloud, work)
        async with app.run_test(size=SIZE) as pilot:
            await wait_loaded(pilot, app)
            await app.push_screen(EditorScreen(template))
            screen = app.screen
            assert isinstance(screen, EditorScreen)
            screen.text_area.cursor_blink = False
            await wait_until(pilot, lambda: screen.validated_generation == screen.generation, 10)
            await pilot.pause(1.0)  # the variables form and the footer settle
            app.save_screenshot(str(out / "editor.svg"))

            # build from the editor; catch it while it provisions
            await pilot.press("ctrl+b")
            await wait_until(pilot, lambda: bool(runs(app)), 10)
            run = runs(app)[0]
            state = next(iter(run.states.values()))
            await wait_until(
                pilot,
                lambda: state.steps["provision"].state == "running" and state.log_total > 12,
                90,
            )
            await pilot.pause(1.0)
            app.save_screenshot(str(out / "build-running.svg"))

            # cancel it; catch the cleanup half way
            await pilot.press("c")
            await pilot.pause(0.3)
            await pilot.press("y")
            await wait_until(
                pilot, lambda: any(r.state == "deleting" for r in state.resources.values()), 60
            )
            await pilot.pause(0.4)
            app.save_screenshot(str(out / "build-cancelling.svg"))
            await wait_until(pilot, run.finished.is_set, 90)

            # a second build that completes, for the history
            app.pop_screen()
            await pilot.pause(0.2)
            await pilot.press("ctrl+b")
            await wait_until(pilot, lambda: len(runs(app)) == 2, 10)
            await wait_until(pilot, runs(app)[1].finished.is_set, 90)
            app.push_screen(HistoryScreen())
            await pilot.pause(0.5)
            history = app.screen
            assert isinstance(history, HistoryScreen)
            await wait_until(pilot, lambda: history.loaded, 10)
            await pilot.pause(0.2)
            app.save_screenshot(str(out / "history.svg"))

            # a provisioner that fails: the build pauses with the failed-step panel
            broken = template.with_name("broken.pkr.hcl")
            broken.write_text(
                template.read_text().replace(
                    '"ls -l /opt/demo",',
                    '"ls -l /opt/demo", "test -f /etc/demo.conf || '
                    "{ echo 'demo.conf is missing' >&2; exit 3; }\",",
                ),
                encoding="utf-8",
            )
            app.pop_screen()
            await app.push_screen(MonitorScreen(load(broken), broken))
            await wait_until(pilot, lambda: len(runs(app)) == 3, 10)

            def panel_up() -> bool:
                return isinstance(app.screen, FailedStepModal) and bool(app.screen.query("Button"))

            await wait_until(pilot, panel_up, 120)
            await pilot.pause(0.5)
            app.save_screenshot(str(out / "build-failed-step.svg"))
            await pilot.press("c")
            await wait_until(pilot, runs(app)[2].finished.is_set, 90)
    for name in ("editor", "build-running", "build-cancelling", "history", "build-failed-step"):
        print(out / f"{name}.svg")


if __name__ == "__main__":
    os.environ.setdefault("AMIBAKE_HOME", tempfile.mkdtemp())
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots"))
