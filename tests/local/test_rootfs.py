"""A root filesystem per instance: overlay over the host's /, users, sudo, dpkg, systemctl, reboot.

Everything runs inside the instance's own namespaces (no network); nothing touches the host's
files: the test checks the host afterwards for what the instance wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from amibake.core.local import rootfs
from amibake.core.local.rootfs import InstanceRoot, default_user_for, overlay_support

SUPPORT = overlay_support()
needs_overlay = pytest.mark.skipif(not SUPPORT.available, reason=SUPPORT.reason)

Factory = Callable[..., InstanceRoot]


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Factory]:
    started: list[InstanceRoot] = []

    def make(name: str = "i-1", *, image: Path | None = None) -> InstanceRoot:
        root = InstanceRoot(
            tmp_path / name, "ubuntu", f"ip-127-1-0-{len(started) + 2}", image_layer=image
        )
        root.start()
        started.append(root)
        return root

    yield make
    for root in started:
        root.stop()


def ok(root: InstanceRoot, script: str, *, user: str | None = None) -> str:
    result = root.shell(script, user=user)
    assert result.returncode == 0, (script, result.stdout, result.stderr)
    return result.stdout


def test_the_fallback_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = overlay_support.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(rootfs.platform, "release", lambda: "5.4.0-150-generic")
    assert probe() == rootfs.OverlaySupport(
        False,
        "kernel 5.4.0-150-generic is older than 6.6 (overlayfs in a user namespace needs 5.11,"
        " the mask layer's user xattrs on tmpfs 6.6)",
    )
    monkeypatch.setattr(rootfs.platform, "release", lambda: "6.8.0")
    monkeypatch.setattr(rootfs.os, "geteuid", lambda: 1234)
    support = probe()
    assert not support.available
    assert support.reason.startswith("running as uid 1234: a full uid/gid range")
    assert "not supported yet" in support.reason


def test_default_users_by_image_family() -> None:
    assert default_user_for("ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-1") == "ubuntu"
    assert default_user_for("debian-12-amd64-20240101-1") == "admin"
    assert default_user_for("al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64") == "ec2-user"


@needs_overlay
def test_sudo_makes_the_command_root_of_the_instance(instance: Factory) -> None:
    root = instance()
    assert ok(root, "id -un; id -u; hostname; pwd").split() == [
        "ubuntu",
        "1000",
        root.hostname,
        "/home/ubuntu",
    ]
    assert ok(root, "sudo id -u; sudo whoami").split() == ["0", "root"]
    assert ok(root, "sudo -u nobody id -un").strip() == "nobody"
    assert ok(root, "sudo -i pwd").strip() == "/root"
    assert ok(root, "FOO=kept sudo -E sh -c 'echo $FOO'").strip() == "kept"
    ok(root, "sudo sh -c 'echo written > /etc/amibake-test' && cat /etc/amibake-test")
    denied = root.shell("touch /etc/not-without-sudo")
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    # The instance wrote into its upper layer, never into the host's /etc.
    assert (root.upper / "etc/amibake-test").read_text() == "written\n"
    assert not Path("/etc/amibake-test").exists()
    # The host's homes, /root and secrets are not the instance's.
    assert ok(root, "ls /home").split() == ["ubuntu"]
    assert ok(root, "sudo ls -A /root").strip() == ""
    assert "$" not in ok(root, "sudo cat /etc/shadow")
    assert ok(root, "cloud-init status --wait").strip() == "status: done"


def _build_deb(directory: Path) -> Path:
    package = directory / "amibake-hello"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "usr/bin").mkdir(parents=True)
    (package / "DEBIAN/control").write_text(
        "Package: amibake-hello\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: amibake tests <tests@example.invalid>\nDescription: says hello\n"
    )
    # dpkg runs postinst as root: it chowns to another user (the full uid range is mapped).
    postinst = package / "DEBIAN/postinst"
    postinst.write_text(
        "#!/bin/sh\nset -e\nmkdir -p /var/lib/amibake-hello\nchown 33:33 /var/lib/amibake-hello\n"
    )
    postinst.chmod(0o755)
    hello = package / "usr/bin/amibake-hello"
    hello.write_text("#!/bin/sh\necho hello from the image\n")
    hello.chmod(0o755)
    deb = directory / "amibake-hello_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(package), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


@needs_overlay
@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_a_local_deb_lands_in_the_image_and_images_stack(instance: Factory, tmp_path: Path) -> None:
    builder = instance("builder")
    deb = _build_deb(tmp_path / "deb")
    shutil.copy(deb, builder.view / "home/ubuntu" / deb.name)
    ok(builder, f"sudo dpkg -i ~/{deb.name}")
    assert ok(builder, "stat -c %u /var/lib/amibake-hello").strip() == "33"
    ok(builder, "sudo sh -c 'printf \"[Service]\\nExecStart=/usr/bin/amibake-hello\\n[Install]\\n"
        "WantedBy=multi-user.target\\n\" > /etc/systemd/system/hello.service'")  # fmt: skip
    ok(builder, "sudo systemctl enable hello")
    ok(builder, "echo from-home > ~/note")
    builder.stop()  # Packer stops the instance before CreateImage
    layer = builder.capture(tmp_path / "layers" / "snap-1")

    launched = instance("launched", image=layer)
    assert "Status: install ok installed" in ok(launched, "dpkg -s amibake-hello")
    assert ok(launched, "amibake-hello").strip() == "hello from the image"
    assert ok(launched, "systemctl is-enabled hello").strip() == "enabled"
    assert ok(launched, "cat ~/note").strip() == "from-home"
    # Starting says there is no init; status fails as on a machine without systemd.
    started = launched.shell("sudo systemctl start hello")
    assert started.returncode == 0 and "no init system" in started.stderr
    assert launched.shell("systemctl status hello").returncode == 3

    # An AMI of that AMI: its own changes stacked over the first image's.
    ok(launched, "sudo rm /usr/bin/amibake-hello && echo second > ~/second")
    launched.stop()
    layer2 = launched.capture(tmp_path / "layers" / "snap-2")
    third = instance("third", image=layer2)
    assert ok(third, "cat ~/note ~/second").split() == ["from-home", "second"]
    assert third.shell("test -e /usr/bin/amibake-hello").returncode == 1  # the deletion stacks
    assert "install ok installed" in ok(third, "dpkg -s amibake-hello")
    assert not Path("/usr/bin/amibake-hello").exists()


@needs_overlay
def test_systemctl_edits_unit_links_offline(instance: Factory) -> None:
    root = instance()
    ok(root, "sudo sh -c 'printf \"[Install]\\nWantedBy=multi-user.target\\n\" "
       "> /etc/systemd/system/demo.service'")  # fmt: skip
    assert root.shell("systemctl is-enabled demo").stdout.strip() == "disabled"
    ok(root, "sudo systemctl enable demo.service")
    assert (root.upper / "etc/systemd/system/multi-user.target.wants/demo.service").is_symlink()
    ok(root, "sudo systemctl disable demo")
    assert root.shell("systemctl is-enabled demo").stdout.strip() == "disabled"
    ok(root, "sudo systemctl mask demo")
    assert root.shell("systemctl is-enabled demo").stdout.strip() == "masked"
    missing = root.shell("sudo systemctl enable no-such-unit")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@needs_overlay
def test_reboot_inside_brings_the_instance_back_with_the_same_files(instance: Factory) -> None:
    root = instance()
    ok(root, "sudo sh -c 'echo kept > /etc/after-reboot'; echo gone > /tmp/scratch")
    first = root.pid1
    root.shell("sudo reboot >/dev/null 2>&1 &")
    assert root.wait_halt_request()  # pid 1 asks the host to take it down (SSH first)
    root.reboot()
    assert root.pid1 != first
    assert ok(root, "cat /etc/after-reboot").strip() == "kept"
    assert root.shell("test -e /tmp/scratch").returncode == 1  # /tmp starts empty
    assert os.path.exists(root.upper / "etc/after-reboot")
