"""Provisioner and post-processor options, decoded as Packer documents them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amibake.core.model import (
    ENV_VAR_FILE_EXECUTE_COMMAND,
    AmiManagementPostProcessor,
    AnsibleLocalProvisioner,
    AnsibleProvisioner,
    BreakpointProvisioner,
    ChefSoloProvisioner,
    FileProvisioner,
    PuppetMasterlessProvisioner,
    ShellLocalPostProcessor,
    ShellLocalProvisioner,
    ShellProvisioner,
)
from tests.templates.helpers import load_text, problems_of

EBS = {
    "type": "amazon-ebs",
    "region": "us-east-1",
    "source_ami": "ami-0123456789abcdef0",
    "instance_type": "t2.micro",
    "ssh_username": "ubuntu",
    "ami_name": "test-ami",
}


def template(provisioners: list[Any] = (), post: list[Any] = (), **extra: Any) -> str:  # type: ignore[assignment]
    doc: dict[str, Any] = {"builders": [EBS, {**EBS, "name": "second"}], **extra}
    if provisioners:
        doc["provisioners"] = list(provisioners)
    if post:
        doc["post-processors"] = list(post)
    return json.dumps(doc, indent=2)


def test_every_shell_option_is_read_with_packers_types() -> None:
    spec = load_text(
        template(
            [
                {
                    "type": "shell",
                    "inline": ["echo hi"],
                    "valid_exit_codes": [0, "2", 3.0],
                    "remote_folder": "/var/tmp",
                    "remote_file": "run.sh",
                    "env": {"B": "two"},
                    "environment_vars": ["A=one"],
                    "env_var_format": "%s=%s ",
                    "skip_clean": "true",
                    "inline_shebang": "/bin/bash -ex",
                    "start_retry_timeout": "1m30s",
                    "pause_after": "2s",
                    "binary": True,
                    "expect_disconnect": True,
                }
            ]
        )
    )
    (shell,) = spec.provisioners
    assert isinstance(shell, ShellProvisioner)
    assert shell.valid_exit_codes == (0, 2, 3)
    assert (shell.remote_folder, shell.remote_file, shell.remote_path) == (
        "/var/tmp",
        "run.sh",
        None,
    )
    assert dict(shell.env) == {"B": "two"} and shell.environment_vars == ("A=one",)
    assert shell.env_var_format == "%s=%s "
    assert shell.skip_clean and shell.binary and shell.expect_disconnect
    assert shell.inline_shebang == "/bin/bash -ex"
    assert (shell.start_retry_timeout, shell.pause_after) == (90.0, 2.0)


def test_use_env_var_file_takes_packers_other_execute_command() -> None:
    spec = load_text(template([{"type": "shell", "inline": ["true"], "use_env_var_file": True}]))
    assert spec.provisioners[0].execute_command == ENV_VAR_FILE_EXECUTE_COMMAND  # type: ignore[union-attr]
    given = load_text(
        template(
            [{"type": "shell", "inline": ["x"], "use_env_var_file": True, "execute_command": "c"}]
        )
    )
    assert given.provisioners[0].execute_command == "c"  # type: ignore[union-attr]


def test_override_replaces_options_for_one_builder_only() -> None:
    spec = load_text(
        template(
            [
                {
                    "type": "shell",
                    "inline": ["echo default"],
                    "override": {"second": {"inline": ["echo second"], "skip_clean": True}},
                }
            ]
        )
    )
    first, second = spec.builders
    (mine,) = spec.provisioners_for(first)
    (theirs,) = spec.provisioners_for(second)
    assert mine.inline == ("echo default",) and not mine.skip_clean  # type: ignore[union-attr]
    assert theirs.inline == ("echo second",) and theirs.skip_clean  # type: ignore[union-attr]


HCL_SOURCE = """
source "amazon-ebs" "web" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "web-ami"
}
"""


def test_override_in_hcl_is_keyed_by_source_name() -> None:
    text = (
        HCL_SOURCE
        + """
build {
  sources = ["source.amazon-ebs.web"]
  provisioner "shell" {
    inline   = ["echo base"]
    override = { web = { inline = ["echo web"] } }
  }
}
"""
    )
    spec = load_text(text, "hcl")
    (provisioner,) = spec.provisioners_for(spec.builders[0])
    assert provisioner.inline == ("echo web",)  # type: ignore[union-attr]


def test_hcl_provisioner_blocks_take_name_and_continue_on_error() -> None:
    """Packer's HCL2 provisioner meta-arguments (hcl2template decodeProvisioner): ``name``
    and, since Packer 1.16, ``continue_on_error``; an override keeps them."""
    text = (
        HCL_SOURCE
        + """
build {
  sources = ["source.amazon-ebs.web"]
  provisioner "file" {
    name              = "provision_frontend"
    continue_on_error = true
    content           = "x"
    destination       = "/tmp/x"
    override          = { web = { destination = "/tmp/y" } }
  }
  provisioner "shell" { inline = ["echo plain"] }
}
"""
    )
    spec = load_text(text, "hcl")
    named, plain = spec.provisioners_for(spec.builders[0])
    assert (named.name, named.continue_on_error) == ("provision_frontend", True)
    assert named.destination == "/tmp/y"  # type: ignore[union-attr]
    assert (plain.name, plain.continue_on_error) == ("", False)


def test_hcl_post_processor_blocks_take_a_name() -> None:
    """hcl2template's post-processor block: an optional ``name`` (JSON has none)."""
    text = (
        HCL_SOURCE
        + """
build {
  sources = ["source.amazon-ebs.web"]
  post-processor "manifest" {
    name   = "write the manifest"
    output = "m.json"
  }
}
"""
    )
    (post,) = load_text(text, "hcl").post_processors
    assert (post.name, post.output) == ("write the manifest", "m.json")  # type: ignore[union-attr]
    (problem,) = problems_of(template(post=[{"type": "manifest", "name": "m"}]))
    assert "post-processors[0].name: unknown option `name`" in problem


def test_provisioner_meta_arguments_are_typed_and_hcl_only() -> None:
    bad = (
        HCL_SOURCE
        + """
build {
  sources = ["source.amazon-ebs.web"]
  provisioner "shell" {
    continue_on_error = "sometimes"
    inline            = ["x"]
  }
}
"""
    )
    (problem,) = problems_of(bad, "hcl")
    assert "build.provisioner[0].continue_on_error: expected true or false" in problem
    assert problem.startswith("t.pkr.hcl:")
    # a JSON provisioner's keys are all its own options: Packer rejects these there
    (problem,) = problems_of(template([{"type": "shell", "inline": ["x"], "name": "n"}]))
    assert "provisioners[0].name: unknown option `name`" in problem


def test_an_override_completes_the_options_for_its_builder() -> None:
    """As Packer merges each builder's override before checking (packer/core.go), the
    options alone need not be complete when every builder they run for has an override."""
    shell = {"type": "shell", "execute_command": "sudo sh '{{.Path}}'"}
    both = {"amazon-ebs": {"inline": ["echo one"]}, "second": {"inline": ["echo two"]}}
    spec = load_text(template([{**shell, "override": both}]))
    (provisioner,) = spec.provisioners
    for builder, line in zip(spec.builders, ("echo one", "echo two"), strict=True):
        variant = provisioner.overrides[builder.name]
        assert variant.inline == (line,)  # type: ignore[union-attr]
    # `only` leaves the second builder out: one override is enough
    one = {**shell, "only": ["amazon-ebs"], "override": {"amazon-ebs": both["amazon-ebs"]}}
    assert load_text(template([one])).provisioners
    # a builder that runs the options alone makes them incomplete
    (problem,) = problems_of(template([{**shell, "override": {"amazon-ebs": both["amazon-ebs"]}}]))
    assert "provisioners[0]: a shell provisioner needs one of" in problem


def test_an_override_for_no_builder_is_one_located_line() -> None:
    """Packer's template validation: "override 'x' doesn't exist"."""
    body = {"type": "shell", "inline": ["x"], "override": {"secnod": {"inline": ["y"]}}}
    (problem,) = problems_of(template([body]))
    assert "provisioners[0].override.secnod: no builder is named `secnod`" in problem
    assert "did you mean `second`" in problem


def test_an_override_option_error_is_located_under_the_override() -> None:
    problems = problems_of(
        template([{"type": "shell", "inline": ["x"], "override": {"second": {"binry": True}}}])
    )
    assert len(problems) == 1
    assert "provisioners[0].override.second.binry: unknown option `binry`" in problems[0]
    assert "did you mean `binary`" in problems[0]


def test_bad_valid_exit_code_is_one_located_line() -> None:
    problems = problems_of(
        template([{"type": "shell", "inline": ["x"], "valid_exit_codes": ["a"]}])
    )
    assert len(problems) == 1
    assert "provisioners[0].valid_exit_codes[0]: expected a whole number" in problems[0]


def test_execute_command_file_is_not_supported_yet() -> None:
    problems = problems_of(
        template([{"type": "shell", "inline": ["x"], "execute_command_file": "run.tpl"}])
    )
    assert len(problems) == 1 and "`execute_command_file` is not supported yet" in problems[0]


def test_file_content_sources_and_generated() -> None:
    spec = load_text(
        template(
            [
                {"type": "file", "content": "hello\n", "destination": "/tmp/greeting"},
                {
                    "type": "file",
                    "sources": ["a.txt", "b/"],
                    "source": "c.txt",
                    "destination": "/tmp/",
                    "generated": True,
                },
            ]
        )
    )
    content, many = spec.provisioners
    assert isinstance(content, FileProvisioner) and content.content == "hello\n"
    assert isinstance(many, FileProvisioner) and many.generated
    assert many.all_sources == ("a.txt", "b/", "c.txt")  # Packer appends `source`


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"content": "x", "source": "a", "destination": "/d"}, "conflicts with `content`"),
        ({"destination": "/d"}, "needs `source`, `sources` or `content`"),
        ({"content": "x", "destination": "/d", "direction": "download"}, "can only be uploaded"),
        ({"source": "a"}, "`destination` is required"),
    ],
)
def test_file_errors_are_one_located_line(body: dict[str, Any], message: str) -> None:
    problems = problems_of(template([{"type": "file", **body}]))
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith("t.json:")


def test_shell_local_provisioner_and_post_processor() -> None:
    spec = load_text(
        template(
            [
                {
                    "type": "shell-local",
                    "inline": ["echo hi"],
                    "env": {"K": "v"},
                    "only_on": ["linux"],
                }
            ],
            post=[
                {
                    "type": "shell-local",
                    "command": "echo done",
                    "execute_command": ["bash", "-c", "{{.Vars}} {{.Script}}"],
                    "keep_input_artifact": True,
                }
            ],
        )
    )
    (provisioner,) = spec.provisioners
    assert isinstance(provisioner, ShellLocalProvisioner)
    assert provisioner.only_on == ("linux",) and dict(provisioner.env) == {"K": "v"}
    (post,) = spec.post_processors
    assert isinstance(post, ShellLocalPostProcessor)
    assert post.command == "echo done"
    assert post.execute_command == ("bash", "-c", "{{.Vars}} {{.Script}}")


def test_shell_local_needs_exactly_one_way_to_say_what_to_run() -> None:
    none = problems_of(template([{"type": "shell-local"}]))
    two = problems_of(template([{"type": "shell-local", "command": "a", "inline": ["b"]}]))
    assert len(none) == 1 and "needs one of `command`, `inline`" in none[0]
    assert len(two) == 1 and "set only one of" in two[0] and "command, inline" in two[0]


def test_breakpoint() -> None:
    spec = load_text(template([{"type": "breakpoint", "note": "look around", "disable": True}]))
    assert spec.provisioners == (BreakpointProvisioner(note="look around", disable=True),)


def test_ansible_options() -> None:
    spec = load_text(
        template(
            [
                {
                    "type": "ansible",
                    "playbook_file": "site.yml",
                    "extra_arguments": ["--tags", "web"],
                    "ansible_env_vars": ["ANSIBLE_NOCOLOR=1"],
                    "user": "deploy",
                    "groups": ["web", "db"],
                    "galaxy_file": "requirements.yml",
                    "use_proxy": False,
                }
            ]
        )
    )
    (ansible,) = spec.provisioners
    assert isinstance(ansible, AnsibleProvisioner)
    assert ansible.extra_arguments == ("--tags", "web") and ansible.groups == ("web", "db")
    assert ansible.user == "deploy" and ansible.use_proxy is False
    assert ansible.use_sftp is False


def test_ansible_use_sftp_decides_the_scp_environment() -> None:
    from amibake.core.engine.provisioners.ansible import ansible_env_vars

    def provisioner(**options: object) -> AnsibleProvisioner:
        spec = load_text(template([{"type": "ansible", "playbook_file": "site.yml", **options}]))
        (ansible,) = spec.provisioners
        assert isinstance(ansible, AnsibleProvisioner)
        return ansible

    assert ansible_env_vars(provisioner(ansible_env_vars=["A=1"])) == (
        "A=1",
        "ANSIBLE_SCP_IF_SSH=True",
    )
    assert ansible_env_vars(provisioner(use_sftp=True, ansible_env_vars=["A=1"])) == ("A=1",)


def test_ansible_needs_a_playbook_and_no_proxy() -> None:
    problems = problems_of(template([{"type": "ansible", "use_proxy": True}]))
    assert len(problems) == 2
    assert (
        "`playbook_file` is required" in problems[0] or "`playbook_file` is required" in problems[1]
    )
    assert any("`use_proxy = true` is not supported yet" in p for p in problems)


@pytest.mark.parametrize("ptype", ["chef-client", "puppet-server", "salt-masterless"])
def test_provisioners_not_run_yet_are_one_line(ptype: str) -> None:
    problems = problems_of(template([{"type": ptype}]))
    assert problems == [
        f"t.json:23:15: provisioners[0].type: provisioner `{ptype}` is not supported yet by"
        " amibake (supported: shell, file, shell-local, breakpoint, ansible, ansible-local,"
        " chef-solo, puppet-masterless)"
    ]


def test_ami_management_post_processor() -> None:
    spec = load_text(
        template(
            post=[
                {
                    "type": "amazon-ami-management",
                    "identifier": "web",
                    "keep_releases": 3,
                    "regions": ["us-east-1"],
                }
            ]
        )
    )
    assert spec.post_processors == (
        AmiManagementPostProcessor(identifier="web", keep_releases=3, regions=("us-east-1",)),
    )
    assert spec.post_processors[0].tag_filters() == [  # type: ignore[union-attr]
        {"Name": "tag:Amazon_AMI_Management_Identifier", "Values": ["web"]}
    ]


def test_ami_management_by_tags() -> None:
    """Plugin 1.4: ``tags`` instead of ``identifier`` (which wins when both are set)."""
    post = {"type": "amazon-ami-management", "keep_days": 30, "regions": ["us-east-1"]}
    spec = load_text(template(post=[{**post, "tags": {"Name": "web", "Team": "core"}}]))
    (management,) = spec.post_processors
    assert management.tag_filters() == [  # type: ignore[union-attr]
        {"Name": "tag:Name", "Values": ["web"]},
        {"Name": "tag:Team", "Values": ["core"]},
    ]
    spec = load_text(template(post=[{**post, "tags": {"Name": "web"}, "identifier": "x"}]))
    assert spec.post_processors[0].tag_filters()[0]["Name"] == (  # type: ignore[union-attr]
        "tag:Amazon_AMI_Management_Identifier"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"identifier": "web"}, "set `keep_releases` or `keep_days`"),
        ({"identifier": "web", "keep_releases": 1, "keep_days": 2}, "only one of"),
        ({"keep_releases": 2}, "set `identifier` or `tags` (the AMIs to manage)"),
        ({"identifier": "web", "keep_releases": 0}, "expected a number >= 1"),
    ],
)
def test_ami_management_errors(body: dict[str, Any], message: str) -> None:
    problems = problems_of(template(post=[{"type": "amazon-ami-management", **body}]))
    assert len(problems) == 1 and message in problems[0], problems


def test_on_instance_provisioners() -> None:
    spec = load_text(
        template(
            [
                {
                    "type": "puppet-masterless",
                    "manifest_file": "site.pp",
                    "module_paths": ["modules"],
                    "facter": {"role": "web"},
                    "prevent_sudo": True,
                },
                {
                    "type": "chef-solo",
                    "cookbook_paths": ["cookbooks"],
                    "run_list": ["recipe[web]"],
                    "json": {"web": {"port": 80, "tls": True}},
                    "skip_install": True,
                },
                {"type": "ansible-local", "playbook_file": "site.yml", "inventory_groups": "a,b"},
            ]
        )
    )
    puppet, chef, ansible = spec.provisioners
    assert isinstance(puppet, PuppetMasterlessProvisioner)
    assert puppet.staging_directory == "/tmp/packer-puppet-masterless" and puppet.prevent_sudo
    assert isinstance(chef, ChefSoloProvisioner)
    assert json.loads(chef.json) == {"web": {"port": 80, "tls": True}}
    assert chef.staging_directory == "/tmp/packer-chef-solo" and chef.skip_install
    assert isinstance(ansible, AnsibleLocalProvisioner)
    assert ansible.inventory_groups == ("a", "b")
    assert ansible.command == "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook"


def test_on_instance_provisioners_need_their_file() -> None:
    problems = problems_of(template([{"type": "puppet-masterless"}, {"type": "ansible-local"}]))
    assert len(problems) == 2
    assert "provisioners[0].manifest_file: `manifest_file` is required" in problems[0]
    assert (
        "provisioners[1].playbook_file: `playbook_file` or `playbook_files` is required"
        in problems[1]
    )


def test_ansible_with_a_keyless_login_is_refused_at_load_time() -> None:
    """Packer's ansible adapter proxies password and agent logins; amibake hands Ansible a key
    file, so a builder that logs in without one is refused when the template is read, once
    per login kind, at the provisioner."""
    doc = {
        "builders": [
            {**EBS, "name": "pw", "ssh_password": "secret"},
            {**EBS, "name": "agent", "ssh_agent_auth": True},
            {**EBS, "name": "pw2", "ssh_password": "secret"},
            # a password with a named temporary key pair: Ansible gets that key
            {**EBS, "name": "keyed", "ssh_password": "secret", "temporary_key_pair_name": "k"},
            {**EBS, "name": "file", "ssh_agent_auth": True, "ssh_private_key_file": "id"},
        ],
        "provisioners": [{"type": "ansible", "playbook_file": "site.yml"}],
    }
    # one line per login kind, at one place (in no particular order)
    assert sorted(problems_of(json.dumps(doc, indent=2))) == [
        "t.json:58:15: provisioners[0].type: ansible with a builder that logs in with "
        "`ssh_agent_auth` (`agent`) is not supported yet by amibake (Ansible gets a key file:"
        " the temporary key pair or `ssh_private_key_file`)",
        "t.json:58:15: provisioners[0].type: ansible with a builder that logs in with "
        "`ssh_password` (`pw`, `pw2`) is not supported yet by amibake (Ansible gets a key file:"
        " the temporary key pair or `ssh_private_key_file`)",
    ]
    # only the builders it runs for count
    doc["provisioners"] = [
        {"type": "ansible", "playbook_file": "site.yml", "only": ["keyed", "file"]},
        {"type": "shell", "inline": ["true"]},
    ]
    spec = load_text(json.dumps(doc, indent=2))
    assert isinstance(spec.provisioners[0], AnsibleProvisioner)


def test_ansible_with_a_password_login_in_hcl_names_the_source() -> None:
    text = """
source "amazon-ebs" "pw" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ssh_password  = "secret"
  ami_name      = "ansible-pw"
}
build {
  sources = ["source.amazon-ebs.pw"]
  provisioner "ansible" {
    playbook_file = "site.yml"
  }
}
"""
    (problem,) = problems_of(text, "hcl")
    assert problem.startswith(
        "t.pkr.hcl:12:15: build.provisioner[0].type: ansible with a builder that logs in with "
        "`ssh_password` (`pw`) is not supported yet"
    ), problem


# ----------------------------------------------------------- options real plugins have (r6)


def _one(provisioner: dict[str, Any]) -> Any:
    (decoded,) = load_text(template([provisioner])).provisioners
    return decoded


def test_ansible_local_playbook_files_collections_and_galaxy_force() -> None:
    """packer-plugin-ansible's ansible-local: ``playbook_files`` (run in order),
    ``collection_paths`` and ``galaxy_force_install``."""
    local = _one(
        {
            "type": "ansible-local",
            "playbook_files": ["base.yml", "web.yml"],
            "collection_paths": ["collections/acme"],
            "galaxy_file": "requirements.yml",
            "galaxy_force_install": True,
        }
    )
    assert isinstance(local, AnsibleLocalProvisioner)
    assert (local.playbook_file, local.playbook_files) == ("", ("base.yml", "web.yml"))
    assert local.collection_paths == ("collections/acme",)
    assert local.galaxy_force_install is True
    assert _one({"type": "ansible-local", "playbook_file": "a.yml"}).galaxy_force_install is False


def test_ansible_local_playbook_file_and_files_exclude_each_other() -> None:
    both = {"type": "ansible-local", "playbook_file": "a.yml", "playbook_files": ["b.yml"]}
    problems = problems_of(template([both]))
    assert len(problems) == 1, problems
    assert "provisioners[0]: set only one of `playbook_file` and `playbook_files`" in problems[0]
    # Packer: an empty list is no playbook at all
    empty = problems_of(template([{"type": "ansible-local", "playbook_files": []}]))
    assert len(empty) == 1 and "`playbook_file` or `playbook_files` is required" in empty[0]
    # a value of the wrong type is said once, not also as missing
    wrong = problems_of(template([{"type": "ansible-local", "playbook_files": {"a": 1}}]))
    assert len(wrong) == 1 and "provisioners[0].playbook_files" in wrong[0], wrong


def test_ansible_inventory_file_and_galaxy_force_with_deps() -> None:
    ansible = _one(
        {
            "type": "ansible",
            "playbook_file": "site.yml",
            "inventory_file": "hosts.ini",
            "galaxy_file": "requirements.yml",
            "galaxy_force_with_deps": True,
        }
    )
    assert isinstance(ansible, AnsibleProvisioner)
    assert ansible.inventory_file == "hosts.ini" and ansible.galaxy_force_with_deps is True
    plain = _one({"type": "ansible", "playbook_file": "site.yml"})
    assert plain.inventory_file is None and plain.galaxy_force_with_deps is False


@pytest.mark.parametrize(
    ("ptype", "key", "value"),
    [
        ("ansible", "inventory_file_template", "{{ .Host }}\n"),
        ("ansible", "ansible_proxy_key_type", "ECDSA"),
        ("ansible", "ansible_winrm_use_http", True),
        ("puppet-masterless", "elevated_user", "Administrator"),
        ("puppet-masterless", "elevated_password", "secret"),
    ],
)
def test_real_options_not_carried_out_yet_are_one_line(ptype: str, key: str, value: Any) -> None:
    """Options the plugins really have: "not supported yet", never "unknown option"."""
    need = {"ansible": {"playbook_file": "site.yml"}, "puppet-masterless": {"manifest_file": "a"}}
    problems = problems_of(template([{"type": ptype, **need[ptype], key: value}]))
    assert len(problems) == 1, problems
    assert f"provisioners[0].{key}: `{key}` is not supported yet by amibake" in problems[0]


def test_winrm_use_http_is_not_an_ansible_option() -> None:
    """The plugin's option is ``ansible_winrm_use_http``; a bare ``winrm_use_http`` is a typo."""
    problems = problems_of(
        template([{"type": "ansible", "playbook_file": "site.yml", "winrm_use_http": True}])
    )
    assert len(problems) == 1 and "not supported yet" not in problems[0], problems
    assert "winrm_use_http" in problems[0]


def test_shell_local_env_var_format() -> None:
    """The SDK's shell-local squashes shell.Provisioner: ``env_var_format`` is an option of
    the provisioner and the post-processor (default ``%s='%s' `` off Windows);
    ``remote_path`` is not (it belongs to the remote shell only)."""
    fmt = "export %s=%s; "
    spec = load_text(
        template(
            [{"type": "shell-local", "inline": ["env"], "env_var_format": fmt}],
            post=[{"type": "shell-local", "inline": ["env"], "env_var_format": fmt}],
        )
    )
    assert spec.provisioners[0].env_var_format == fmt  # type: ignore[union-attr]
    assert spec.post_processors[0].env_var_format == fmt  # type: ignore[union-attr]
    assert _one({"type": "shell-local", "inline": ["env"]}).env_var_format == "%s='%s' "
    problems = problems_of(template([{"type": "shell-local", "inline": ["a"], "remote_path": "x"}]))
    assert len(problems) == 1 and "remote_path" in problems[0]
    assert "not supported yet" not in problems[0]


def test_chef_solo_json_string() -> None:
    """chef-solo's ``json_string`` (the plugin's way for HCL2, e.g. ``jsonencode(...)``) is
    unmarshalled over ``json``: its top-level keys win, the others stay."""
    chef = _one(
        {
            "type": "chef-solo",
            "json": {"web": {"port": 80}, "db": {"size": 1}},
            "json_string": '{"web": {"port": 8080, "tls": true}}',
        }
    )
    assert isinstance(chef, ChefSoloProvisioner)
    assert json.loads(chef.json) == {"web": {"port": 8080, "tls": True}, "db": {"size": 1}}
    hcl = load_text(
        'source "amazon-ebs" "x" {\n  region = "us-east-1"\n'
        '  source_ami = "ami-0123456789abcdef0"\n'
        '  instance_type = "t2.micro"\n  ssh_username = "u"\n  ami_name = "abc"\n}\n'
        'build {\n  sources = ["source.amazon-ebs.x"]\n  provisioner "chef-solo" {\n'
        '    json_string = jsonencode({ web = { port = 80 } })\n    run_list = ["recipe[web]"]\n'
        "  }\n}\n",
        "hcl",
    )
    assert json.loads(hcl.provisioners[0].json) == {"web": {"port": 80}}  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_chef_solo_json_string_must_be_an_object(text: str) -> None:
    problems = problems_of(template([{"type": "chef-solo", "json_string": text}]))
    assert len(problems) == 1, problems
    assert "provisioners[0].json_string: `json_string` must be a JSON object" in problems[0]


def test_ami_management_resolve_aliases() -> None:
    post = {"type": "amazon-ami-management", "identifier": "web", "keep_releases": 2}
    spec = load_text(template(post=[{**post, "resolve_aliases": True}]))
    assert spec.post_processors[0].resolve_aliases is True  # type: ignore[union-attr]
    # the plugin's default: aliases stay as they are
    assert load_text(template(post=[post])).post_processors[0].resolve_aliases is False  # type: ignore[union-attr]
