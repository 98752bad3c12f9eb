"""The amibake terminal app: target and region, the AMI browser, and the way to the rest.

``AmibakeApp`` owns ``app.session`` (:mod:`amibake.tui.session`): the target (the embedded
local cloud or an AWS profile) and the region every screen works in. Switching
either never needs a restart: the app replaces the session's fields and tells
every screen with :class:`amibake.tui.session.SessionChanged`.

The local cloud starts in-process in a worker thread when it is the target (about
two seconds), or with ``[local] own_process`` as ``amibake local serve`` in a process of
its own, and stops when the app exits; a local cloud already running in the process
(tests) is reused and left running.

Keys follow k9s habits (``/`` filter, ``r`` refresh, ``enter`` select, ``escape``
back, ``?`` help). Every binding has an id; ``[keymap]`` in the settings file
remaps it (``App.set_keymap``).
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.signal import Signal

from amibake.core.aws import Target
from amibake.core.catalog import CatalogCache
from amibake.core.errors import AmibakeError
from amibake.core.paths import expand_home
from amibake.core.settings import LOCAL_TARGET, Settings
from amibake.core.targets import TargetInfo, default_target, list_targets, local_target
from amibake.tui.host import BuildsHost
from amibake.tui.keymap import unknown_keymap_ids
from amibake.tui.modals.recovery import offer_recovery
from amibake.tui.session import Session, SessionChanged, UseAsSource

if TYPE_CHECKING:
    from amibake.core.local.cloud import LocalCloud
    from amibake.core.local.process import LocalCloudProcess
    from amibake.tui.screens.browser import BrowserScreen

# Regions offered before DescribeRegions has answered (and if it cannot).
FALLBACK_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
)


def target_choice(target: TargetInfo) -> str:
    """A target as the picker and the palette list it: a profile that cannot sign in now
    (no credentials, SSO not signed in or expired) carries ✘ and the reason."""
    return f"{target.label}  ✘ {target.problem}" if target.problem else target.label


class AmibakeCommands(Provider):
    """The command palette's amibake commands, aware of the current screen and session."""

    def _commands(self) -> list[tuple[str, Any, str]]:
        app = self.app
        assert isinstance(app, AmibakeApp)  # the provider is registered on AmibakeApp only
        session = app.session
        commands: list[tuple[str, Any, str]] = [
            ("Switch target…", app.action_pick_target, "the local cloud or an AWS profile"),
            ("Switch region…", app.action_pick_region, f"now {session.region}"),
            ("Open template in the editor…", app.action_open_editor, "edit a template"),
            ("New build from a template file…", app.action_build_template, "build"),
            ("Build history", app.action_open_history, "past builds"),
            (
                "Sweep leftovers in this region",
                app.action_sweep,
                "find temporary resources builds left behind",
            ),
            ("Keys (help)", app.action_help, "every key of this screen"),
        ]
        for target in app.targets:
            if target.key != session.target_name:
                commands.append(
                    (
                        f"Target: {target_choice(target)}",
                        partial(app.switch_target, target.key),
                        "",
                    )
                )
        if session.is_local:
            from amibake.core.local.latency import PROFILES

            for name, profile in PROFILES.items():
                if name != app.settings.latency:
                    commands.append(
                        (
                            f"Local cloud latency: {name}",
                            partial(app.set_latency, name),
                            f"a build waits {profile.total_build_floor():g} s for the cloud",
                        )
                    )
        for region in app.regions:
            if region != session.region:
                commands.append((f"Region: {region}", partial(app.switch_region, region), ""))
        browser = app.browser
        if browser is not None and app.screen is browser:
            commands += [
                ("Refresh images", browser.action_refresh, "ask the API again (r)"),
                ("Use selected image as source", browser.action_use_source, "(u)"),
                ("Copy selected AMI id", browser.action_copy_id, "(c)"),
            ]
            for preset in session.settings.all_owner_presets():
                commands.append(
                    (f"Owner: {preset.label}", partial(browser.set_owner, preset.key), "")
                )
        for path in session.settings.recent_templates:
            commands.append((f"Build {path}", partial(app.build_file, Path(path)), "recent"))
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands()[:7]:
            yield DiscoveryHit(name, callback, help=help_text or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text or None)


class AmibakeApp(BuildsHost):
    """amibake's terminal app."""

    CSS_PATH = "app.tcss"
    TITLE = "amibake"
    COMMANDS = App.COMMANDS | {AmibakeCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("t", "pick_target", "Target", id="app.target"),
        Binding("g", "pick_region", "Region", id="app.region"),
        Binding("e", "open_editor", "Editor", show=False, id="app.editor"),
        Binding("h", "open_history", "History", show=False, id="app.history"),
        Binding("b", "build_template", "Build", show=False, id="app.build"),
    ]

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        target: str | None = None,
        region: str | None = None,
        latency: str | None = None,
        cloud: LocalCloud | None = None,
        catalog_cache: CatalogCache | None = None,
        now: str | None = None,
        recover: bool = True,
    ) -> None:
        """``target``: ``"local"`` or ``"profile:NAME"`` (default: remembered, else chosen
        by :func:`amibake.core.targets.default_target`). ``cloud``: a running local cloud to use
        (left running at exit). ``now``: a fixed clock for deprecation (snapshots).
        ``recover``: on start, offer to clean up what a crashed earlier run left behind."""
        super().__init__()
        self.settings = settings or Settings.load()
        if latency:
            self.settings.latency = latency
        self.targets: list[TargetInfo] = list_targets()
        chosen = target or default_target(self.settings.target, self.targets)
        if region:
            self.settings.region = region
        self.catalog_cache = catalog_cache or CatalogCache()
        self.now_override = now
        self.recover = recover
        self.regions: list[str] = list(FALLBACK_REGIONS)
        self._given_cloud = cloud
        self._owned_cloud: LocalCloud | LocalCloudProcess | None = None
        #: Published with the session after every target or region change.
        self.session_signal: Signal[Session] = Signal(self, "session")
        self.session = Session(target=Target(), region=self.settings.region, settings=self.settings)
        self.session.target_name = chosen
        if chosen != LOCAL_TARGET:
            self.session.target = Target(profile=chosen.removeprefix("profile:"))
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def browser(self) -> BrowserScreen | None:
        from amibake.tui.screens.browser import BrowserScreen

        for screen in self.screen_stack:
            if isinstance(screen, BrowserScreen):
                return screen
        return None

    def on_mount(self) -> None:
        from amibake.tui.screens.browser import BrowserScreen

        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._update_title()
        if self.settings.load_error:
            self.notify(self.settings.load_error, title="Settings", severity="warning", timeout=10)
        unknown = unknown_keymap_ids(self.settings.keymap)
        if unknown:
            self.notify(
                f"[keymap] names no binding: {', '.join(unknown)}",
                title="Settings",
                severity="warning",
                timeout=10,
            )
        self.push_screen(BrowserScreen())
        if self.recover:
            self.run_worker(offer_recovery(self), group="recovery", exit_on_error=False)
        if self.session.is_local:
            self._use_local_cloud()
        else:
            self.check_target()
            self.load_regions()

    def _theme_changed(self, theme: Any) -> None:
        if self.settings.theme != theme.name:
            self.settings.theme = theme.name
            self.save_settings()

    def on_unmount(self) -> None:
        self.stop_local_cloud()
        self.session.close()

    def stop_local_cloud(self) -> None:
        """Stop the local cloud if this app started it (idempotent)."""
        cloud, self._owned_cloud = self._owned_cloud, None
        if cloud is not None:
            with contextlib.suppress(Exception):  # exiting: nothing useful to tell
                cloud.stop()

    def save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as error:
            self.notify(f"cannot save settings: {error}", severity="warning")

    def report_error(self, title: str, message: str, *, modal: bool = False) -> None:
        """Show an error from the engine or AWS: a notification, or a modal when it blocks."""
        if modal:
            from amibake.tui.modals.error import ErrorModal

            self.push_screen(ErrorModal(title, message))
        else:
            self.notify(message, title=title, severity="error", timeout=8)

    # -- session ---------------------------------------------------------------------------

    def _update_title(self) -> None:
        self.sub_title = self.session.label + ("" if self.session.ready else " (starting…)")

    def _announce(self, what: str) -> None:
        self._update_title()
        self.post_message(SessionChanged(self.session, what))

    def on_session_changed(self, event: SessionChanged) -> None:
        # Every screen on the stack hears it (their on_session_changed); widgets may
        # subscribe to session_signal instead.
        for screen in self.screen_stack:
            screen.post_message(SessionChanged(event.session, event.what))
        self.session_signal.publish(event.session)

    def _use_local_cloud(self) -> None:
        from amibake.core.local.cloud import running_cloud

        # an in-process cloud already running (tests) is reused, unless the settings ask for
        # the cloud's own process
        in_process = None if self.settings.local_own_process else running_cloud()
        cloud = self._given_cloud or self._owned_cloud or in_process
        if cloud is not None:
            self._local_ready(cloud)
        else:
            self._update_title()
            self.start_local_cloud()

    @work(thread=True, exclusive=True, group="local-cloud", exit_on_error=False)
    def start_local_cloud(self) -> None:
        from amibake.core.local.cloud import LocalCloud
        from amibake.core.local.process import LocalCloudProcess

        cloud: LocalCloud | LocalCloudProcess
        try:
            if self.settings.local_own_process:  # [local] own_process: its own interpreter
                cloud = LocalCloudProcess(
                    latency=self.settings.latency, instance_network=self.settings.instance_network
                ).start()
            else:
                cloud = LocalCloud(
                    latency=self.settings.latency, instance_network=self.settings.instance_network
                ).start()
        except AmibakeError as error:
            self.call_from_thread(
                self.report_error, "The local cloud did not start", str(error), modal=True
            )
            return
        except Exception as error:
            self.call_from_thread(
                self.report_error,
                "The local cloud did not start",
                f"{type(error).__name__}: {error}",
                modal=True,
            )
            return
        self._owned_cloud = cloud
        self.call_from_thread(self._local_ready, cloud)

    def _local_ready(self, cloud: LocalCloud | LocalCloudProcess) -> None:
        if self.session.target_name != LOCAL_TARGET:
            return  # the user switched away while it started
        self.session.local_cloud = cloud
        self.session.target = local_target(cloud)
        self.session.account_id = cloud.account_id
        self._announce("target")
        self.load_regions()

    def switch_target(self, key: str) -> None:
        """Work on ``key`` ("local" or "profile:NAME") from now on."""
        if key == self.session.target_name and self.session.ready:
            return
        self.settings.target = key
        self.save_settings()
        self.session.account_id = None
        self.session.target_name = key
        if key == LOCAL_TARGET:
            self.session.local_cloud = None
            self._use_local_cloud()
            return
        self.session.local_cloud = None
        self.session.target = Target(profile=key.removeprefix("profile:"))
        self._announce("target")
        self.check_target()
        self.load_regions()

    def set_latency(self, name: str) -> None:
        """The local cloud's latency profile, from now on and for its next starts."""
        self.settings.latency = name
        self.save_settings()
        if self.session.local_cloud is not None:
            self.session.local_cloud.set_latency(name)
        self.notify(f"local cloud latency: {name}")

    @work(exclusive=True, group="check-target", exit_on_error=False)
    async def check_target(self) -> None:
        from amibake.core.targets import check_credentials

        session = self.session
        target = session.target
        try:
            account = await check_credentials(session.aws(), session.region)
        except AmibakeError as error:
            if session.target == target:
                self.report_error(
                    "Credentials", getattr(error, "aws_message", str(error)), modal=True
                )
            return
        except Exception as error:
            self.report_error("Credentials", f"{type(error).__name__}: {error}", modal=True)
            return
        if session.target == target:
            session.account_id = account
            self.notify(f"{session.profile_name}: account {account}", title="Target")

    @work(exclusive=True, group="regions", exit_on_error=False)
    async def load_regions(self) -> None:
        from amibake.core.targets import list_regions

        try:
            self.regions = await list_regions(self.session.aws(), self.session.region)
        except Exception:  # the picker falls back to the well-known list; errors show elsewhere
            self.regions = list(FALLBACK_REGIONS)

    def switch_region(self, region: str) -> None:
        if region == self.session.region:
            return
        self.session.region = region
        self.settings.region = region
        self.save_settings()
        self._announce("region")

    # -- pickers ---------------------------------------------------------------------------

    def action_pick_target(self) -> None:
        from amibake.tui.modals.picker import PickerModal

        self.targets = list_targets()
        options = [(t.key, target_choice(t)) for t in self.targets]
        hint = "AWS profiles come from your AWS config and credentials files"
        if any(not t.usable for t in self.targets):
            hint += "\n✘ cannot sign in now (as your AWS files and SSO cache tell)"

        def chosen(key: str | None) -> None:
            if key:
                self.switch_target(key)

        self.push_screen(
            PickerModal(
                "Target",
                options,
                current=self.session.target_name,
                hint=hint,
                id="target-picker",
            ),
            chosen,
        )

    def action_pick_region(self) -> None:
        from amibake.tui.modals.region_picker import RegionPicker

        def chosen(region: str | None) -> None:
            if region:
                self.switch_region(region)

        self.push_screen(RegionPicker(self.regions, self.session.region, self.settings), chosen)

    # -- the editor, the build monitor and the history --------------------------------------
    # (imported on first use: the browser is what most sessions open first)

    def action_open_editor(self) -> None:
        from amibake.tui.screens.editor import EditorScreen

        self.push_screen(EditorScreen())

    def action_open_history(self) -> None:
        from amibake.tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen())

    def on_use_as_source(self, message: UseAsSource) -> None:
        from amibake.tui.screens.editor import EditorScreen

        self.push_screen(EditorScreen(source_image=message.image, as_filter=message.as_filter))

    def action_build_template(self) -> None:
        from amibake.core.examples import examples
        from amibake.tui.modals.picker import PickerModal

        labels = {str(path): f"{name}  (example)" for name, path in examples().items()}
        # a built example is also a recent template: one option per path (ids must be unique)
        options = [(p, labels.pop(p, p)) for p in dict.fromkeys(self.settings.recent_templates)]
        options += list(labels.items())

        def chosen(path: str | None) -> None:
            if path:
                self.build_file(expand_home(path))

        self.push_screen(
            PickerModal(
                "Build a template",
                options,
                placeholder="type to filter, or a path to a template file",
                hint="Packer JSON, Packer HCL2 (.pkr.hcl) or amibake TOML",
                accept=lambda text: expand_home(text).is_file(),
                id="template-picker",
            ),
            chosen,
        )

    def build_file(self, path: Path) -> None:
        """Load ``path`` and open the build monitor on it."""
        from amibake.tui.screens.monitor import MonitorScreen

        session = self.session
        if not session.ready:
            self.notify("the local cloud is still starting")
            return
        try:
            from amibake.core.datasources_aws import AwsResolver
            from amibake.core.templates import load

            # the template's data sources run against the session's target, as a build's do
            resolver = AwsResolver(session.target, session.region, local=session.is_local)
            try:
                spec = load(path, datasources=resolver)
            finally:
                resolver.close()
        except AmibakeError as error:
            self.report_error(f"Cannot build {path.name}", str(error), modal=True)
            return
        except Exception as error:
            self.report_error(f"Cannot build {path.name}", f"{type(error).__name__}: {error}")
            return
        self.settings.remember_template(path)
        self.save_settings()
        self.push_screen(MonitorScreen(spec, path))

    # -- sweep -----------------------------------------------------------------------------

    @work(exclusive=True, group="sweep", exit_on_error=False)
    async def action_sweep(self) -> None:
        """Find what builds left behind in this region and delete it once confirmed."""
        from amibake.tui.modals.recovery import sweep_region

        await sweep_region(self, self.session, self.report_error)

    # -- help and quit ---------------------------------------------------------------------

    def action_help(self) -> None:
        from amibake.tui.modals.help import HelpModal, key_rows, screen_title

        if isinstance(self.screen, HelpModal):
            return
        title = f"Keys · {screen_title(self.screen)}"
        self.push_screen(HelpModal(key_rows(self.screen), title=title))
