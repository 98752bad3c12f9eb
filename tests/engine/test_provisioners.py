"""Provisioners and post-processors in real builds on the local cloud.

One build carries most options at once (a build costs seconds): shell options, file
content/sources/directories both ways, a disconnect with ``expect_disconnect`` and the
reconnect after it, shell-local, breakpoints, ansible (a stub ``ansible-playbook`` first
on PATH records what it was given), and the post-processors.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.provisioners import breakpoint
from amibake.core.events import (
    BreakpointReached,
    Event,
    LogLines,
    Message,
    ResourceChanged,
    StepStarted,
)
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan
from tests.engine.test_build import AS_ROOT, FOCAL, Harness, builder, shell
from tests.local.conftest import wait_state

STUB_PLAYBOOK = """#!/bin/sh
# a stand-in for ansible-playbook: records what amibake gives it
out="{record}"
printf '%s\\n' "$@" > "$out/argv"
inventory=""
prev=""
for arg in "$@"; do
  [ "$prev" = "-i" ] && inventory="$arg"
  case "$arg" in ansible_ssh_private_key_file=*) key="${{arg#ansible_ssh_private_key_file=}}";; esac
  prev="$arg"
done
cp "$inventory" "$out/inventory"
stat -c '%a' "$inventory" > "$out/inventory.mode"
stat -c '%a' "$key" > "$out/key.mode"
head -c 35 "$key" > "$out/key.head"
echo "$inventory" > "$out/inventory.path"
echo "$ANSIBLE_NOCOLOR" > "$out/env"
echo "${{ANSIBLE_SCP_IF_SSH:-unset}}" > "$out/scp"
echo "playbook ran"
"""


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Harness:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    return Harness(cloud, tmp_path)


@pytest.fixture
def no_stdin_breakpoints() -> Any:
    breakpoint.stdin_continues = False
    yield
    breakpoint.stdin_continues = True


def drop_ssh(cloud: LocalCloud, instance_id: str) -> None:
    """Cut every SSH connection of the instance, as a reboot does (from the cloud's side)."""

    def abort() -> None:
        server = cloud._instances[instance_id].ssh
        assert server is not None
        for conn in list(server._connections):
            conn.abort()

    assert cloud._loop is not None
    cloud._loop.call_soon_threadsafe(abort)


def newest_focal(ec2: Any) -> dict[str, Any]:
    """The image the tests' builders find by filter."""
    images = ec2.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )["Images"]
    return max(images, key=lambda i: i["CreationDate"])  # type: ignore[no-any-return]


def old_image(ec2: Any, identifier: str) -> tuple[str, list[str]]:
    """An AMI (with its snapshots) tagged for amazon-ami-management, made before the build."""
    source = newest_focal(ec2)["ImageId"]
    instance = ec2.run_instances(ImageId=source, InstanceType="t3.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]
    try:
        wait_state(ec2, instance, "running")  # as on AWS, a pending instance cannot be imaged
        image = ec2.create_image(InstanceId=instance, Name=f"old-{identifier}", NoReboot=True)[
            "ImageId"
        ]
    finally:
        ec2.terminate_instances(InstanceIds=[instance])
    ec2.create_tags(
        Resources=[image], Tags=[{"Key": "Amazon_AMI_Management_Identifier", "Value": identifier}]
    )
    described = ec2.describe_images(ImageIds=[image])["Images"][0]
    snapshots = [m["Ebs"]["SnapshotId"] for m in described["BlockDeviceMappings"] if "Ebs" in m]
    assert snapshots
    return image, snapshots


async def test_one_build_runs_every_provisioner_and_post_processor(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_stdin_breakpoints: Any
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub = stubs / "ansible-playbook"
    stub.write_text(STUB_PLAYBOOK.format(record=record))
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "top.txt").write_text("top\n")
    (tmp_path / "tree" / "sub" / "deep.txt").write_text("deep\n")
    (tmp_path / "crlf.sh").write_bytes(
        b"#!/bin/sh\r\necho crlf-$(printf x | od -c | head -1 | wc -w)\r\n"
    )
    # amazon-ami-management's options take build data too: the identifier names the source
    source_name = newest_focal(harness.client())["Name"]
    identifier = f"{source_name}-web-{tmp_path.name}"
    old, old_snapshots = old_image(harness.client(), identifier)
    local_out = tmp_path / "local.txt"
    post_out = tmp_path / "post.txt"
    manifest = tmp_path / "manifest.json"
    ebs = builder(
        tags={"Amazon_AMI_Management_Identifier": "{{ .SourceAMIName }}-web-" + tmp_path.name}
    )
    template = harness.template(
        {
            "builders": [ebs],
            "provisioners": [
                shell(
                    "echo vars: $A $B $PACKER_BUILD_NAME $PACKER_BUILDER_TYPE",
                    "echo path: $0",
                    "exit 3",
                    environment_vars=["A=it's"],
                    env={"B": "two words"},
                    valid_exit_codes=[0, 3],
                    remote_folder="/var/tmp",
                    remote_file="mine.sh",
                    skip_clean=True,
                ),
                shell("echo from-file: $A", use_env_var_file=True, environment_vars=["A=filed"]),
                shell('echo "shebang: ${BASH_VERSION:+bash}"', inline_shebang="/bin/bash -e"),
                {"type": "shell", "script": "crlf.sh"},
                {"type": "file", "content": "hello content\n", "destination": "/tmp/c/greeting"},
                {"type": "file", "sources": ["tree/", "site.yml"], "destination": "/tmp/up/"},
                {"type": "file", "source": "tree", "destination": "/tmp/whole"},
                shell(
                    "mkdir -p /tmp/dl/a && echo one > /tmp/dl/a/1.txt && echo two > /tmp/dl/2.txt"
                ),
                {
                    "type": "file",
                    "direction": "download",
                    "source": "/tmp/dl/",
                    "destination": "back/",
                },
                shell(
                    "cat /tmp/c/greeting /tmp/up/top.txt /tmp/up/sub/deep.txt /tmp/up/site.yml",
                    "cat /tmp/whole/tree/sub/deep.txt; ls /var/tmp/mine.sh",
                ),
                shell("echo going down", "sleep 30", expect_disconnect=True),
                shell("echo after reconnect"),
                {
                    "type": "shell-local",
                    "inline": [f'echo "$PACKER_BUILD_NAME $PACKER_BUILDER_TYPE $L" > {local_out}'],
                    "env": {"L": "local"},
                },
                {"type": "breakpoint", "note": "skipped", "disable": True},
                {"type": "breakpoint", "note": "look around"},
                {
                    "type": "ansible",
                    "playbook_file": "site.yml",
                    "extra_arguments": ["--tags", "web"],
                    "ansible_env_vars": ["ANSIBLE_NOCOLOR=1"],
                    "groups": ["web"],
                },
            ],
            "post-processors": [
                {
                    "type": "shell-local",
                    "inline": [f'echo "$AMIBAKE_ARTIFACT_ID $PACKER_BUILD_NAME" > {post_out}'],
                },
                {"type": "manifest", "output": str(manifest)},
                {
                    "type": "amazon-ami-management",
                    "identifier": "{{ build `SourceAMIName` }}-web-" + tmp_path.name,
                    "keep_releases": 1,
                    "regions": ["us-east-1"],
                },
            ],
        }
    )
    instance: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ResourceChanged) and event.resource_id.startswith("i-"):
            instance.append(event.resource_id)
        if isinstance(event, LogLines) and "going down" in event.lines:
            drop_ssh(harness.cloud, instance[-1])
        if isinstance(event, BreakpointReached):
            assert event.key in breakpoint.waiting()
            assert event.note == "look around" and event.connect.startswith("ssh -p ")
            asyncio.get_running_loop().call_soon(breakpoint.resume, event.key)

    (result,) = await harness.build(template, on_event=on_event)
    assert result.status == "succeeded", result.error
    out = harness.lines("stdout")
    # shell: Packer's variables and env, quotes intact; the remote path; valid exit code 3
    assert "vars: it's two words amazon-ebs amazon-ebs" in out
    assert "path: /var/tmp/mine.sh" in out
    assert "from-file: filed" in out and "shebang: bash" in out
    assert "crlf-2" in out  # CR removed: `printf x | od -c` line has 2 words
    # file: content, contents of tree/, a file, tree itself; skip_clean kept mine.sh
    assert [
        line
        for line in out
        if line in {"hello content", "top", "deep", "- hosts: all", "/var/tmp/mine.sh"}
    ] == ["hello content", "top", "deep", "- hosts: all", "deep", "/var/tmp/mine.sh"]
    assert (tmp_path / "back" / "a" / "1.txt").read_text() == "one\n"
    assert (tmp_path / "back" / "2.txt").read_text() == "two\n"
    # the disconnect was expected; the next provisioner ran on a new connection
    assert out.index("going down") < out.index("after reconnect")
    messages = [e.text for e in harness.events if isinstance(e, Message)]
    assert any("expect_disconnect allows" in m for m in messages)
    # shell-local ran here with Packer's variables
    assert local_out.read_text() == "amazon-ebs amazon-ebs local\n"
    # breakpoints: the disabled one says so, the other waited for resume()
    assert 'Breakpoint provisioner with note "skipped" disabled; continuing...' in messages
    assert 'Pausing at breakpoint provisioner with note "look around".' in messages
    assert breakpoint.waiting() == ()
    # ansible: argv, inventory (0600, removed), key (0600), env
    argv = (record / "argv").read_text().splitlines()
    assert argv[:4] == [
        "-e",
        "packer_build_name=amazon-ebs packer_builder_type=amazon-ebs",
        "--ssh-extra-args",
        argv[3],
    ]
    assert "StrictHostKeyChecking=yes" in argv[3]
    assert argv[4:6] == ["--tags", "web"] and argv[-1].endswith("site.yml")
    inventory = (record / "inventory").read_text().splitlines()
    host = inventory[0]
    assert host.startswith("default ansible_host=127.") and "ansible_user=ubuntu" in host
    assert inventory[1:] == ["[web]", host]
    assert (record / "inventory.mode").read_text().strip() == "600"
    assert (record / "key.mode").read_text().strip() == "600"
    assert (record / "key.head").read_text() == "-----BEGIN OPENSSH PRIVATE KEY-----"
    assert not Path((record / "inventory.path").read_text().strip()).exists()
    assert (record / "env").read_text() == "1\n"
    assert (record / "scp").read_text() == "True\n"  # use_sftp = false, as Packer sets it
    # post-processors: shell-local saw the artifact, the manifest lists it, the old AMI went
    image = result.artifacts["us-east-1"]
    assert post_out.read_text() == f"us-east-1:{image} amazon-ebs\n"
    builds = json.loads(manifest.read_text())["builds"]
    assert [b["artifact_id"] for b in builds] == [f"us-east-1:{image}"]
    ec2 = harness.client()
    left = ec2.describe_images(
        Owners=["self"],
        Filters=[{"Name": "tag:Amazon_AMI_Management_Identifier", "Values": [identifier]}],
    )["Images"]
    assert [i["ImageId"] for i in left] == [image]
    assert old not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not remaining & set(old_snapshots)
    leftovers = harness.leftovers(result.build_id)
    assert set(leftovers) == {"images", "snapshots"}


async def test_an_unexpected_disconnect_fails_with_packers_hint(harness: Harness) -> None:
    template = harness.template(
        {"builders": [builder()], "provisioners": [shell("echo going down", "sleep 30")]}
    )
    instance: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ResourceChanged) and event.resource_id.startswith("i-"):
            instance.append(event.resource_id)
        if isinstance(event, LogLines) and "going down" in event.lines:
            drop_ssh(harness.cloud, instance[-1])

    (result,) = await harness.build(template, on_event=on_event)
    assert result.status == "failed"
    assert result.error is not None
    assert "disconnected unexpectedly" in result.error and "expect_disconnect" in result.error
    assert harness.leftovers(result.build_id) == {}


async def test_without_ansible_playbook_one_clear_line(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ansible-playbook is not on this machine's PATH (the rest of the PATH stays: the local
    # cloud's instances need their tools)
    from amibake.core.engine.provisioners import ansible

    real_which = ansible.shutil.which
    monkeypatch.setattr(
        ansible.shutil,
        "which",
        lambda name, *a, **k: None if name == "ansible-playbook" else real_which(name, *a, **k),
    )
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    template = harness.template(
        {
            "builders": [builder()],
            "provisioners": [{"type": "ansible", "playbook_file": "site.yml"}],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "failed"
    assert result.error is not None and result.error.endswith(
        "`ansible-playbook` is not on PATH; install it with: pip install 'amibake[ansible]'"
    )
    assert harness.leftovers(result.build_id) == {}


async def test_a_breakpoint_without_stdin_fails_as_in_packer(harness: Harness) -> None:
    # pytest's stdin cannot be read: Packer's ui.Ask fails the same way on a closed stdin
    template = harness.template({"builders": [builder()], "provisioners": [{"type": "breakpoint"}]})
    (result,) = await harness.build(template)
    assert result.status == "failed"
    assert result.error is not None and "standard input is closed" in result.error
    assert harness.leftovers(result.build_id) == {}


STUB = """#!/bin/sh
# records how it was called (a stand-in for the real tool)
{ echo "$(basename "$0") cwd=$(pwd) args=$*"; env | grep '^FACTER_' | sort; } >> /tmp/calls.txt
"""
SUDO = """#!/bin/sh
# runs the command as the same user (the sandbox has no root); keeps -E as a marker
[ "$1" = "-E" ] && shift && echo "sudo -E" >> /tmp/calls.txt
exec "$@"
"""


async def test_tools_on_the_instance_run_packers_commands(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "site.pp").write_text("notify { 'hi': }\n")
    (tmp_path / "modules" / "web" / "manifests").mkdir(parents=True)
    (tmp_path / "modules" / "web" / "manifests" / "init.pp").write_text("class web {}\n")
    (tmp_path / "cookbooks" / "web" / "recipes").mkdir(parents=True)
    (tmp_path / "cookbooks" / "web" / "recipes" / "default.rb").write_text("log 'hi'\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    (tmp_path / "requirements.yml").write_text("- src: geerlingguy.nginx\n")
    install = ["mkdir -p /usr/local/bin"]
    for tool in ("puppet", "chef-solo", "ansible-playbook", "ansible-galaxy"):
        install += [
            f"cat > /usr/local/bin/{tool} <<'EOF'\n{STUB}EOF",
            f"chmod +x /usr/local/bin/{tool}",
        ]
    install += [f"cat > /usr/local/bin/sudo <<'EOF'\n{SUDO}EOF", "chmod +x /usr/local/bin/sudo"]
    template = harness.template(
        {
            "builders": [builder(skip_create_ami=True)],
            "provisioners": [
                # overlay roots: /usr/local/bin is root's, as on EC2 (issue 13)
                shell(*install, **(AS_ROOT if harness.cloud.overlay_mode else {})),
                {
                    "type": "puppet-masterless",
                    "manifest_file": "site.pp",
                    "module_paths": ["modules"],
                    "facter": {"role": "web"},
                    "extra_arguments": ["--verbose"],
                },
                {
                    "type": "chef-solo",
                    "cookbook_paths": ["cookbooks"],
                    "run_list": ["recipe[web]"],
                    "json": {"web": {"port": 80}},
                    "skip_install": True,
                    "prevent_sudo": True,
                },
                {
                    "type": "ansible-local",
                    "playbook_file": "site.yml",
                    "staging_directory": "/tmp/ansible-staging",
                    "inventory_groups": ["web", "db"],
                    "extra_arguments": ["--tags", "web"],
                    "galaxy_file": "requirements.yml",
                },
                shell(
                    "cat /tmp/calls.txt",
                    "echo ---",
                    "cat /tmp/packer-puppet-masterless/manifests/site.pp",
                    "cat /tmp/packer-puppet-masterless/module-0/web/manifests/init.pp",
                    "cat /tmp/packer-chef-solo/solo.rb",
                    "cat /tmp/packer-chef-solo/node.json | tr -d ' \\n'; echo",
                    "cat /tmp/packer-chef-solo/cookbooks-0/web/recipes/default.rb",
                    "cat /tmp/ansible-staging/site.yml /tmp/ansible-staging/*.ini",
                ),
            ],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    out = harness.lines("stdout")
    calls, files = out[: out.index("---")], out[out.index("---") + 1 :]
    staging = "/tmp/packer-puppet-masterless"
    assert calls == [
        # puppet: Packer's default command, with sudo -E, facts and the uploaded paths
        "sudo -E",
        f"puppet cwd={staging} args=apply --detailed-exitcodes --modulepath={staging}/module-0"
        f" --verbose {staging}/manifests/site.pp",
        "FACTER_packer_build_name=amazon-ebs",
        "FACTER_packer_builder_type=amazon-ebs",
        "FACTER_role=web",
        # chef-solo: no sudo (prevent_sudo)
        "chef-solo cwd=/home/ubuntu args=--no-color -c /tmp/packer-chef-solo/solo.rb"
        " -j /tmp/packer-chef-solo/node.json",
        # ansible-local: galaxy first, then the playbook with Packer's variables
        "ansible-galaxy cwd=/tmp/ansible-staging args=install -r"
        " /tmp/ansible-staging/requirements.yml -p /tmp/ansible-staging/roles",
        "ansible-playbook cwd=/tmp/ansible-staging args=/tmp/ansible-staging/site.yml"
        " --extra-vars packer_build_name=amazon-ebs packer_builder_type=amazon-ebs --tags web"
        " -c local -i /tmp/ansible-staging/packer-provisioner-ansible-local-inventory.ini",
    ]
    assert files == [
        "notify { 'hi': }",
        "class web {}",
        'cookbook_path\t["/tmp/packer-chef-solo/cookbooks-0"]',
        '{"run_list":["recipe[web]"],"web":{"port":80}}',
        "log 'hi'",
        "- hosts: all",
        "[web]",
        "127.0.0.1",
        "[db]",
        "127.0.0.1",
    ]
    assert harness.leftovers(result.build_id) == {}


async def test_continue_on_error_says_the_failure_and_goes_on(harness: Harness) -> None:
    """HCL2's ``continue_on_error`` (Packer 1.16): once ``max_retries`` are spent, the
    failure is said in Packer's words and the next provisioner runs; the build succeeds."""
    template = harness.directory / "template.pkr.hcl"
    template.write_text(
        f"""
source "amazon-ebs" "web" {{
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "continue-{{{{timestamp}}}}"
  source_ami_filter {{
    filters     = {{ name = "{FOCAL}" }}
    owners      = ["099720109477"]
    most_recent = true
  }}
}}
build {{
  sources = ["source.amazon-ebs.web"]
  provisioner "shell" {{
    name              = "may fail"
    continue_on_error = true
    max_retries       = 1
    inline            = ["echo trying; exit 4"]
  }}
  provisioner "shell" {{ inline = ["echo after"] }}
}}
"""
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    assert harness.lines("stdout").count("trying") == 2  # the retry ran first
    assert "after" in harness.lines("stdout")
    messages = [e.text for e in harness.events if isinstance(e, Message)]
    assert "Provisioner 1: may fail" in messages
    (said,) = [m for m in messages if "continue_on_error is set" in m]
    assert said.startswith('Provisioner 1 failed with "') and "exit status 4" in said, said


async def test_ami_management_by_tags_keeps_the_amis_still_in_use(harness: Harness) -> None:
    """amazon-ami-management (``tags``, plugin 1.4) over four older AMIs: the unused one is
    deregistered with its snapshots; those an instance, a launch template and an Auto Scaling
    launch configuration use are kept, each said, as the plugin does."""
    ec2 = harness.client()
    team = f"team-{harness.directory.name}"
    made = {}
    for role in ("unused", "instance", "template", "configuration"):
        made[role] = old_image(ec2, f"{team}-{role}")[0]
        ec2.create_tags(Resources=[made[role]], Tags=[{"Key": "Team", "Value": team}])
    user = ec2.run_instances(
        ImageId=made["instance"], InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    template_name = f"lt-{team}"
    ec2.create_launch_template(
        LaunchTemplateName=template_name, LaunchTemplateData={"ImageId": made["template"]}
    )
    autoscaling = harness.cloud.client("autoscaling")
    configuration = f"lc-{team}"
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=configuration,
        ImageId=made["configuration"],
        InstanceType="t3.micro",
    )
    try:
        template = harness.template(
            {
                "builders": [builder(tags={"Team": team})],
                "post-processors": [
                    {
                        "type": "amazon-ami-management",
                        "tags": {"Team": team},
                        "keep_releases": 1,
                        "regions": ["us-east-1"],
                    }
                ],
            }
        )
        (result,) = await harness.build(template)
    finally:
        ec2.terminate_instances(InstanceIds=[user])
        ec2.delete_launch_template(LaunchTemplateName=template_name)
        autoscaling.delete_launch_configuration(LaunchConfigurationName=configuration)
    assert result.status == "succeeded", result.error
    left = {
        image["ImageId"]
        for image in ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "tag:Team", "Values": [team]}]
        )["Images"]
    }
    kept = {made["instance"], made["template"], made["configuration"]}
    assert left == {result.artifacts["us-east-1"], *kept}
    messages = [e.text for e in harness.events if isinstance(e, Message)]
    assert f"{made['instance']} is used in instance {user}: skipped" in messages
    assert f"{made['template']} is used in launch template {template_name} (1): skipped" in (
        messages
    )
    assert (
        f"{made['configuration']} is used in launch configuration {configuration}: skipped"
        in messages
    )
    assert f"Deleting image: {made['unused']} (us-east-1)" in messages


async def test_files_the_template_names_are_checked_before_anything_is_created(
    harness: Harness,
) -> None:
    """As `packer validate` ("Bad script", "Bad source"), a missing local file stops the build
    before any resource exists, all of them named in one line; a name with a run-time
    template is the provisioner's to check."""
    (harness.directory / "present.sh").write_text("echo here\n")
    template = harness.template(
        {
            "builders": [builder()],
            "provisioners": [
                {"type": "shell", "scripts": ["present.sh", "missing.sh"]},
                {"type": "file", "source": "missing.txt", "destination": "/tmp/x"},
                {"type": "file", "source": "{{ build `ID` }}.txt", "destination": "/tmp/y"},
                {
                    "type": "file",
                    "direction": "download",
                    "source": "/etc/hostname",
                    "destination": "out.txt",
                },
            ],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "failed"
    assert result.error == (
        "files the template names are not there (as `packer validate` says): "
        "shell provisioner 1 script missing.sh; file provisioner 2 source missing.txt"
    )
    started = [e.step for e in harness.events if isinstance(e, StepStarted)]
    assert started == ["prevalidate"]
    assert harness.leftovers(result.build_id) == {}
