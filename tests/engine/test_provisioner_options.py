"""Provisioner and post-processor options real plugins have, carried out in one build on the
local cloud: ansible-local's ``playbook_files`` / ``collection_paths`` /
``galaxy_force_install``, chef-solo's ``json_string``, shell-local's ``env_var_format``,
ansible's ``inventory_file`` / ``galaxy_force_with_deps``; and amazon-ami-management's
``resolve_aliases`` against the EC2 calls it makes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.postprocess import images_in_use
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan
from tests.engine.test_build import AS_ROOT, Harness, builder, shell

#: on the instance: records how each tool was called (and the collections path Ansible gets)
REMOTE_STUB = """#!/bin/sh
{ echo "$(basename "$0") cwd=$(pwd) args=$*"
  [ -n "$ANSIBLE_COLLECTIONS_PATH" ] && echo "collections=$ANSIBLE_COLLECTIONS_PATH"
} >> /tmp/calls.txt
exit 0
"""
SUDO = """#!/bin/sh
[ "$1" = "-E" ] && shift
exec "$@"
"""
#: on this machine: ansible-playbook / ansible-galaxy stand-ins writing their argv
LOCAL_STUB = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "{record}"
"""


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Harness:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    return Harness(cloud, tmp_path)


async def test_real_plugin_options_in_one_build(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "base.yml").write_text("- hosts: all  # base\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "web.yml").write_text("- hosts: all  # web\n")
    (tmp_path / "collections" / "acme" / "plugins").mkdir(parents=True)
    (tmp_path / "collections" / "acme" / "galaxy.yml").write_text("name: acme\n")
    (tmp_path / "requirements.yml").write_text("- src: geerlingguy.nginx\n")
    (tmp_path / "hosts.ini").write_text("[web]\nmine ansible_host=127.0.0.1\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    record = tmp_path / "local-calls.txt"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool in ("ansible-playbook", "ansible-galaxy"):
        (stubs / tool).write_text(LOCAL_STUB.format(record=record))
        (stubs / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    install = ["mkdir -p /usr/local/bin"]
    for tool in ("chef-solo", "ansible-playbook", "ansible-galaxy"):
        install += [
            f"cat > /usr/local/bin/{tool} <<'EOF'\n{REMOTE_STUB}EOF",
            f"chmod +x /usr/local/bin/{tool}",
        ]
    install += [f"cat > /usr/local/bin/sudo <<'EOF'\n{SUDO}EOF", "chmod +x /usr/local/bin/sudo"]
    staging = "/tmp/ansible-staging"
    web_remote = f"{staging}{(tmp_path / 'extra' / 'web.yml').as_posix()}"
    template = harness.template(
        {
            "builders": [builder(skip_create_ami=True)],
            "provisioners": [
                shell(*install, **(AS_ROOT if harness.cloud.overlay_mode else {})),
                {
                    "type": "ansible-local",
                    "playbook_dir": "playbooks",
                    "playbook_files": ["playbooks/base.yml", "extra/web.yml"],
                    "collection_paths": ["collections/acme"],
                    "galaxy_file": "requirements.yml",
                    "galaxy_force_install": True,
                    "staging_directory": staging,
                },
                {
                    "type": "chef-solo",
                    "json": {"web": {"port": 80}, "db": {"size": 1}},
                    "json_string": '{"web": {"port": 8080}}',
                    "skip_install": True,
                    "prevent_sudo": True,
                },
                {
                    "type": "shell-local",
                    "env": {"GREETING": "hi"},
                    "env_var_format": "export %s=%s; ",
                    "execute_command": ["/bin/echo", "vars: {{.Vars}}"],
                    "inline": ["unused"],
                },
                {
                    "type": "ansible",
                    "playbook_file": "site.yml",
                    "inventory_file": "hosts.ini",
                    "galaxy_file": "requirements.yml",
                    "galaxy_force_with_deps": True,
                },
                shell(
                    "cat /tmp/calls.txt",
                    "echo ---",
                    f"cat {web_remote}",
                    f"cat {staging}/collections/acme/galaxy.yml",
                    "cat /tmp/packer-chef-solo/node.json | tr -d ' \\n'; echo",
                ),
            ],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    out = harness.lines("stdout")
    (vars_line,) = [line for line in out if line.startswith("vars: ")]
    start = out.index("---")
    calls = [line for line in out[:start] if not line.startswith("vars: ")]
    # calls.txt is the instance's, in order; the shell-local line is this machine's
    calls = calls[calls.index(next(c for c in calls if c.startswith("ansible-galaxy"))) :]
    extra = "--extra-vars packer_build_name=amazon-ebs packer_builder_type=amazon-ebs"
    inventory = f"{staging}/packer-provisioner-ansible-local-inventory.ini"
    collections = f"collections=:{staging}/collections"
    assert calls == [
        # galaxy_force_install: -f, after the roles path (as Packer appends it)
        f"ansible-galaxy cwd={staging} args=install -r {staging}/requirements.yml"
        f" -p {staging}/roles -f",
        # playbook_files: each one run, in order; the one in playbook_dir from there, the
        # other uploaded under its absolute local path; collection_paths on Ansible's path
        f"ansible-playbook cwd={staging} args={staging}/base.yml {extra} -c local -i {inventory}",
        collections,
        f"ansible-playbook cwd={staging} args={web_remote} {extra} -c local -i {inventory}",
        collections,
        # chef-solo ran (its node.json below)
        "chef-solo cwd=/home/ubuntu args=--no-color -c /tmp/packer-chef-solo/solo.rb"
        " -j /tmp/packer-chef-solo/node.json",
    ]
    assert out[start + 1 :] == [
        "- hosts: all  # web",
        "name: acme",
        # json_string over json: its top-level keys win
        '{"db":{"size":1},"web":{"port":8080}}',
    ]
    # shell-local: every variable through env_var_format
    assert "export GREETING=hi; " in vars_line and "export PACKER_BUILD_NAME=" in vars_line
    # ansible: galaxy with --force-with-deps; the playbook with the user's own inventory
    galaxy, playbook = record.read_text().splitlines()
    assert galaxy.startswith("ansible-galaxy install -r ")
    assert galaxy.endswith("requirements.yml --force-with-deps")
    assert playbook.endswith(f"-i {tmp_path / 'hosts.ini'} {tmp_path / 'site.yml'}")
    assert (tmp_path / "hosts.ini").read_text() == "[web]\nmine ansible_host=127.0.0.1\n"
    assert harness.leftovers(result.build_id) == {}


class _Aws:
    """Answers the EC2 calls images_in_use makes and records them (as boto3 would see them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def collect(self, region: str, op: str, key: str, **params: Any) -> list[Any]:
        self.calls.append((op, params))
        if op == "DescribeLaunchTemplates":
            return [{"LaunchTemplateId": "lt-1"}, {"LaunchTemplateId": "lt-2"}]
        if op == "DescribeLaunchTemplateVersions" and params.get("ResolveAlias"):
            return [{"LaunchTemplateData": {"ImageId": "ami-resolved"}}]
        if op == "DescribeLaunchTemplateVersions":
            name = params["LaunchTemplateId"]
            return [
                {
                    "LaunchTemplateName": name,
                    "VersionNumber": 3,
                    "LaunchTemplateData": {"ImageId": "resolve:ssm:/acme/web/latest"},
                },
                {
                    "LaunchTemplateName": name,
                    "VersionNumber": 4,
                    "LaunchTemplateData": {"ImageId": "ami-plain"},
                },
            ]
        return []

    async def service_call(self, service: str, region: str, op: str, **params: Any) -> Any:
        return {"LaunchConfigurations": []}


class _Ctx:
    def __init__(self) -> None:
        self.aws = _Aws()


@pytest.mark.parametrize("resolve", [False, True])
def test_resolve_aliases_decides_whether_ssm_aliases_are_resolved(resolve: bool) -> None:
    """Plugin 1.6 (cleaner.go): off (the default), a launch template version's
    ``resolve:ssm:`` image counts as the alias itself; on, that version alone is described
    again with ``ResolveAlias`` (EC2 resolves only one version at a time), once per alias."""
    ctx = _Ctx()
    used = asyncio.run(images_in_use(ctx, "us-east-1", resolve_aliases=resolve))  # type: ignore[arg-type]
    listed = [p for op, p in ctx.aws.calls if op == "DescribeLaunchTemplateVersions"]
    plain = [{"LaunchTemplateId": "lt-1"}, {"LaunchTemplateId": "lt-2"}]
    if resolve:
        once = {"LaunchTemplateId": "lt-1", "Versions": ["3"], "ResolveAlias": True}
        assert listed == [plain[0], once, plain[1]]
        assert used == {
            "ami-resolved": "launch template lt-1 (3)",
            "ami-plain": "launch template lt-1 (4)",
        }
    else:
        assert listed == plain
        assert used == {
            "resolve:ssm:/acme/web/latest": "launch template lt-1 (3)",
            "ami-plain": "launch template lt-1 (4)",
        }
