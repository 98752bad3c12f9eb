"""Where the app works right now: ``app.session``, and the messages about it.

Every screen reads the current target and region from ``self.app.session``
(a :class:`Session`); none keeps its own copy. The app owns it and replaces its
fields when the user switches target or region, then tells everyone:

* :class:`SessionChanged` is posted to the app **and forwarded to every screen on
  the stack**, so a screen handles it with ``def on_session_changed(self, event)``.
  Widgets that want it can subscribe to the app's signal instead:
  ``self.app.session_signal.subscribe(self, callback)`` (callback gets the Session).
* :class:`UseAsSource` is posted by the AMI browser when the user picks an image
  as a build's source. The app opens ``amibake.tui.screens.editor.EditorScreen`` on it
  (``source_image`` and ``as_filter``). ``message.source_ami`` is the exact id;
  ``message.source_ami_filter`` is the Packer-style ``source_ami_filter`` block
  (owners, name wildcard, most_recent) for the same image series.

Fields of a Session:

``target``       :class:`amibake.core.aws.Target` to hand to :class:`amibake.core.aws.Aws` / the
engine. ``target_name``  ``"local"`` or ``"profile:NAME"`` (what settings remember).
``region``       the current region, e.g. ``"us-east-1"``.
``ssh_port``     the local cloud's SSH port when on the local cloud, else ``None``
                 (the template's ``ssh_port`` is used).
``local_cloud``  the running :class:`amibake.core.local.cloud.LocalCloud` (or, with
                [local] own_process, its :class:`~amibake.core.local.process.LocalCloudProcess`),
                or ``None``.
``settings``     :class:`amibake.core.settings.Settings` (mutate, then ``settings.save()``).
``account_id``   the account of the target once checked (or ``None``).

In tests, build one with :meth:`Session.for_local` around the suite's running
cloud (``amibake.core.local.cloud.running_cloud()``) and assign it to ``app.session``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

from amibake.core.aws import Aws, Target
from amibake.core.settings import LOCAL_TARGET, Settings
from amibake.core.targets import local_target

if TYPE_CHECKING:
    from amibake.core.local.cloud import LocalCloud
    from amibake.core.local.process import LocalCloudProcess

__all__ = ["Session", "SessionChanged", "UseAsSource"]


@dataclass(eq=False)
class Session:
    """The app's current target and region (see the module docstring)."""

    target: Target
    region: str
    settings: Settings
    target_name: str = LOCAL_TARGET
    local_cloud: LocalCloud | LocalCloudProcess | None = None
    account_id: str | None = None
    _aws: Aws | None = field(default=None, repr=False)

    @property
    def ssh_port(self) -> int | None:
        return self.local_cloud.ssh_port if self.local_cloud is not None else None

    @property
    def is_local(self) -> bool:
        return self.target_name == LOCAL_TARGET

    @property
    def ready(self) -> bool:
        """False while the local cloud is still starting (no endpoint yet)."""
        return not self.is_local or self.local_cloud is not None

    @property
    def label(self) -> str:
        """Short text for headers: ``local cloud · us-east-1`` or ``profile dev · eu-west-1``."""
        where = "local cloud" if self.is_local else f"profile {self.profile_name}"
        return f"{where} · {self.region}"

    @property
    def profile_name(self) -> str | None:
        if self.target_name.startswith("profile:"):
            return self.target_name.removeprefix("profile:")
        return None

    def aws(self) -> Aws:
        """A shared :class:`Aws` facade for this target (created on first use)."""
        if self._aws is None or self._aws.target != self.target:
            if self._aws is not None:
                self._aws.close()
            self._aws = Aws(self.target)
        return self._aws

    def close(self) -> None:
        if self._aws is not None:
            self._aws.close()
            self._aws = None

    @classmethod
    def for_local(
        cls, cloud: LocalCloud, region: str = "us-east-1", settings: Settings | None = None
    ) -> Session:
        """A session on a running local cloud."""
        return cls(
            target=local_target(cloud),
            region=region,
            settings=settings or Settings.load(),
            target_name=LOCAL_TARGET,
            local_cloud=cloud,
            account_id=getattr(cloud, "account_id", None),
        )

    @classmethod
    def for_profile(
        cls, profile: str | None, region: str, settings: Settings | None = None
    ) -> Session:
        """A session on an AWS profile (``None``: boto3's default chain)."""
        return cls(
            target=Target(profile=profile),
            region=region,
            settings=settings or Settings.load(),
            target_name=f"profile:{profile or 'default'}",
        )


class SessionChanged(Message, bubble=False):
    """The target or the region changed (posted to the app, forwarded to every screen).

    ``what`` is ``"target"`` (a new target, maybe a new region too) or ``"region"``.
    It does not bubble: the copy each screen receives stays with that screen.
    """

    def __init__(self, session: Session, what: str) -> None:
        super().__init__()
        self.session = session
        self.what = what


class UseAsSource(Message):
    """Hand ``image`` (a DescribeImages ``Images[]`` dict) to the template editor.

    ``as_filter`` is the user's choice: False for the exact ``source_ami`` id, True
    for the equivalent ``source_ami_filter`` with ``most_recent``.
    """

    def __init__(self, image: dict[str, Any], as_filter: bool) -> None:
        super().__init__()
        self.image = image
        self.as_filter = as_filter

    @property
    def source_ami(self) -> str:
        return str(self.image.get("ImageId", ""))

    @property
    def source_ami_filter(self) -> dict[str, Any]:
        """Packer's block: ``{"filters": {...}, "owners": [...], "most_recent": True}``."""
        from amibake.core.catalog import source_ami_filter

        return source_ami_filter(self.image)

    @property
    def region(self) -> str | None:
        """The region the image was listed in (set by the browser), if known."""
        value = self.image.get("_Region")
        return str(value) if value else None
