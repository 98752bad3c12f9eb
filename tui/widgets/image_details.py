"""The browser's detail panel text for one image, and its one-line status widget."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.reactive import reactive
from textual.widget import Widget

from amibake.core.owners import owner_label


class StatusLine(Widget):
    """One line of text that repaints without a layout pass (it changes every keystroke)."""

    text: reactive[str] = reactive("", layout=False)

    def render(self) -> str:
        return self.text


def selected_line(image: dict[str, Any]) -> str:
    """One line for the image under the cursor: full name, id, owner (the table elides names)."""
    owner_id = str(image.get("OwnerId", ""))
    owner = owner_label(owner_id, image.get("ImageOwnerAlias"))
    name = escape(str(image.get("Name", "")))
    return f"[b]{name}[/b]  {escape(str(image.get('ImageId', '')))}  {escape(owner)}"


def details_markup(image: dict[str, Any], now: str) -> str:
    """The detail panel's text for one DescribeImages entry."""

    def line(label: str, value: Any) -> str:
        return f"[b]{label}[/b] {escape(str(value))}"

    deprecation = image.get("DeprecationTime")
    deprecated = bool(deprecation) and str(deprecation) <= now
    owner_id = str(image.get("OwnerId", ""))
    owner = owner_label(owner_id, image.get("ImageOwnerAlias"))
    owner_text = f"{owner} ({owner_id})" if owner != owner_id else owner_id
    lines = [
        f"[b $accent]{escape(str(image.get('Name', '')))}[/]",
        "",
        line("Id", image.get("ImageId", "")),
        line("Owner", owner_text),
        line("Created", image.get("CreationDate", "")),
    ]
    if deprecation:
        lines.append(
            line("Deprecation", deprecation) + (" [b $warning]deprecated[/]" if deprecated else "")
        )
    lines.append(
        line(
            "Type",
            f"{image.get('Architecture', '')} · {image.get('VirtualizationType', '')} · "
            f"{image.get('RootDeviceType', '')} ({image.get('RootDeviceName', '-')})",
        )
    )
    lines.append(line("Platform", image.get("PlatformDetails", "-")))
    extras = []
    if image.get("EnaSupport"):
        extras.append("ENA")
    if image.get("BootMode"):
        extras.append(f"boot {image['BootMode']}")
    if image.get("Public") is not None:
        extras.append("public" if image.get("Public") else "private")
    if extras:
        lines.append(line("Flags", ", ".join(extras)))
    if image.get("Description"):
        lines += ["", "[b]Description[/b]", escape(str(image["Description"]))]
    devices = image.get("BlockDeviceMappings") or []
    if devices:
        lines += ["", "[b]Block devices[/b]"]
        for device in devices:
            ebs = device.get("Ebs") or {}
            if ebs:
                summary = (
                    f"{ebs.get('VolumeSize', '?')} GiB {ebs.get('VolumeType', '')} "
                    f"{ebs.get('SnapshotId', '')}"
                    + (" encrypted" if ebs.get("Encrypted") else "")
                    + (" (kept)" if ebs.get("DeleteOnTermination") is False else "")
                )
            else:
                summary = str(device.get("VirtualName", "ephemeral"))
            lines.append(f"  {escape(str(device.get('DeviceName', '')))}  {escape(summary)}")
    tags = image.get("Tags") or []
    if tags:
        lines += ["", "[b]Tags[/b]"]
        for tag in sorted(tags, key=lambda t: str(t.get("Key", ""))):
            lines.append(f"  {escape(str(tag.get('Key')))} = {escape(str(tag.get('Value')))}")
    if image.get("ProductCodes"):
        codes = ", ".join(str(c.get("ProductCodeId")) for c in image["ProductCodes"])
        lines += ["", line("Product codes", codes)]
    return "\n".join(lines)
