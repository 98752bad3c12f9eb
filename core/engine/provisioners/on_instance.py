"""Provisioners whose tool runs ON the instance: puppet-masterless, chef-solo, ansible-local.

Each uploads what it needs to a staging directory over SSH, then runs Packer's documented
command (``execute_command`` and its Go-template fields, ``{{if .Sudo}}`` included).
"""

from __future__ import annotations

import json
import posixpath
import shlex
import uuid
from collections.abc import Mapping
from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import (
    ProvisionError,
    build_values,
    communicator,
    ignore,
    local_path,
    with_build_data,
)
from amibake.core.engine.provisioners.file import upload_local
from amibake.core.model import (
    AnsibleLocalProvisioner,
    ChefSoloProvisioner,
    PuppetMasterlessProvisioner,
)
from amibake.core.ssh import CommandResult
from amibake.core.templates.gotemplate import GoTemplateError, render_runtime

PUPPET_EXECUTE_COMMAND = (
    "cd {{.WorkingDir}} && "
    '{{if ne .FacterVars ""}}{{.FacterVars}} {{end}}'
    "{{if .Sudo}}sudo -E {{end}}"
    '{{if ne .PuppetBinDir ""}}{{.PuppetBinDir}}/{{end}}'
    "puppet apply --detailed-exitcodes "
    "{{if .Debug}}--debug {{end}}"
    "{{if ne .ModulePath \"\"}}--modulepath='{{.ModulePath}}' {{end}}"
    "{{if ne .HieraConfigPath \"\"}}--hiera_config='{{.HieraConfigPath}}' {{end}}"
    "{{if ne .ManifestDir \"\"}}--manifestdir='{{.ManifestDir}}' {{end}}"
    '{{if ne .ExtraArguments ""}}{{.ExtraArguments}} {{end}}'
    "{{.ManifestFile}}"
)
CHEF_SOLO_EXECUTE_COMMAND = (
    "{{if .Sudo}}sudo {{end}}chef-solo --no-color -c {{.ConfigPath}} -j {{.JsonPath}}"
)
CHEF_SOLO_INSTALL_COMMAND = (
    "curl -L https://omnitruck.chef.io/install.sh | "
    "{{if .Sudo}}sudo {{end}}bash -s --{{if .Version}} -v {{.Version}}{{end}}"
)


def _render(what: str, template: str, fields: Mapping[str, Any], ctx: BuildContext) -> str:
    try:
        return render_runtime(template, fields, build_values(ctx))
    except GoTemplateError as error:
        raise ProvisionError(f"{what} execute_command: {error.message}") from None


async def _run(
    ctx: BuildContext, number: int, command: str, *, quiet: bool = False
) -> CommandResult:
    comm = await communicator(ctx)
    return await comm.run(
        command,
        on_stdout=ignore if quiet else (lambda lines: ctx.log("stdout", lines, number)),
        on_stderr=ignore if quiet else (lambda lines: ctx.log("stderr", lines, number)),
        batch=True,
    )


async def _make_dir(ctx: BuildContext, number: int, directory: str, sudo: bool) -> None:
    """Packer's staging directory: created, then opened (0777) so the SSH user can write it."""
    prefix = "sudo " if sudo else ""
    quoted = shlex.quote(directory)
    ctx.say(f"Creating directory: {directory}")
    result = await _run(
        ctx, number, f"{prefix}mkdir -p {quoted} && {prefix}chmod 0777 {quoted}", quiet=True
    )
    if result.exit_status != 0:
        raise ProvisionError(f"cannot create the staging directory {directory}")


async def _upload(ctx: BuildContext, number: int, local: str, remote: str) -> str:
    """Upload a local file or directory (its contents) to ``remote``; returns ``remote``."""
    path = local_path(ctx, local)
    if path.is_dir():
        await upload_local(ctx, number, f"{local.rstrip('/')}/", remote)
    elif path.is_file():
        await upload_local(ctx, number, local, remote)
    else:
        raise ProvisionError(f"{local}: no such file or directory")
    return remote


async def _clean(ctx: BuildContext, number: int, directory: str, sudo: bool) -> None:
    prefix = "sudo " if sudo else ""
    await _run(ctx, number, f"{prefix}rm -rf {shlex.quote(directory)}", quiet=True)


# --------------------------------------------------------------------------- puppet-masterless


async def run_puppet(
    ctx: BuildContext, number: int, provisioner: PuppetMasterlessProvisioner
) -> None:
    provisioner = with_build_data(ctx, provisioner, f"puppet-masterless provisioner {number}")
    staging = provisioner.staging_directory
    sudo = not provisioner.prevent_sudo
    await _make_dir(ctx, number, staging, sudo)
    hiera = ""
    if provisioner.hiera_config_path:
        hiera = await _upload(ctx, number, provisioner.hiera_config_path, f"{staging}/hiera.yaml")
    modules = []
    for index, module in enumerate(provisioner.module_paths):
        remote = f"{staging}/module-{index}"
        await _make_dir(ctx, number, remote, False)
        modules.append(await _upload(ctx, number, module, remote))
    manifest_dir = ""
    if provisioner.manifest_dir:
        manifest_dir = f"{staging}/manifests"
        await _make_dir(ctx, number, manifest_dir, False)
        await _upload(ctx, number, provisioner.manifest_dir, manifest_dir)
    manifests = f"{staging}/manifests"
    await _make_dir(ctx, number, manifests, False)
    source = local_path(ctx, provisioner.manifest_file)
    if source.is_dir():
        manifest = await _upload(ctx, number, provisioner.manifest_file, manifests)
    else:
        manifest = await _upload(
            ctx, number, provisioner.manifest_file, f"{manifests}/{source.name}"
        )
    facts = {"packer_build_name": ctx.build_name, "packer_builder_type": ctx.builder.type}
    facts.update(provisioner.facter)
    fields = {
        "WorkingDir": provisioner.working_directory or staging,
        "FacterVars": " ".join(f"FACTER_{k}='{v}'" for k, v in facts.items()),
        "Sudo": sudo,
        "PuppetBinDir": provisioner.puppet_bin_dir,
        "Debug": False,
        "ModulePath": ":".join(modules),
        "HieraConfigPath": hiera,
        "ManifestDir": manifest_dir,
        "ExtraArguments": " ".join(provisioner.extra_arguments),
        "ManifestFile": manifest,
    }
    command = _render(
        "puppet-masterless", provisioner.execute_command or PUPPET_EXECUTE_COMMAND, fields, ctx
    )
    ctx.say(f"Running Puppet: {command}")
    result = await _run(ctx, number, command)
    # --detailed-exitcodes: 2 means "changes applied", a success
    if result.exit_status not in (0, 2) and not provisioner.ignore_exit_codes:
        raise ProvisionError(
            f"puppet-masterless provisioner {number}: puppet exited {result.exit_status}"
        )
    if provisioner.clean_staging_directory:
        await _clean(ctx, number, staging, sudo)


# --------------------------------------------------------------------------- chef-solo


def solo_rb(
    cookbook_paths: list[str],
    roles_path: str,
    data_bags_path: str,
    environments_path: str,
    chef_environment: str,
    chef_license: str,
) -> str:
    """The chef-solo configuration Packer writes by default."""
    lines = [f"cookbook_path\t[{', '.join(json.dumps(p) for p in cookbook_paths)}]"]
    if data_bags_path:
        lines.append(f'data_bag_path\t"{data_bags_path}"')
    if roles_path:
        lines.append(f'role_path\t"{roles_path}"')
    if environments_path:
        lines.append(f'environment_path\t"{environments_path}"')
    if chef_environment:
        lines.append(f'environment\t"{chef_environment}"')
    if chef_license:
        lines.append(f'chef_license\t"{chef_license}"')
    return "\n".join(lines) + "\n"


async def run_chef_solo(ctx: BuildContext, number: int, provisioner: ChefSoloProvisioner) -> None:
    provisioner = with_build_data(ctx, provisioner, f"chef-solo provisioner {number}")
    staging = provisioner.staging_directory
    sudo = not provisioner.prevent_sudo
    if not provisioner.skip_install:
        install = _render(
            "chef-solo install",
            provisioner.install_command or CHEF_SOLO_INSTALL_COMMAND,
            {"Sudo": sudo, "Version": provisioner.version},
            ctx,
        )
        ctx.say("Installing Chef...")
        result = await _run(ctx, number, install)
        if result.exit_status != 0:
            raise ProvisionError(
                f"chef-solo provisioner {number}: installing Chef exited {result.exit_status}"
            )
    await _make_dir(ctx, number, staging, sudo)
    cookbooks = []
    for index, path in enumerate(provisioner.cookbook_paths):
        remote = f"{staging}/cookbooks-{index}"
        await _make_dir(ctx, number, remote, False)
        cookbooks.append(await _upload(ctx, number, path, remote))
    cookbooks += list(provisioner.remote_cookbook_paths)
    uploaded: dict[str, str] = {}
    for key, local, name in (
        ("roles", provisioner.roles_path, "roles"),
        ("data_bags", provisioner.data_bags_path, "data_bags"),
        ("environments", provisioner.environments_path, "environments"),
    ):
        if local:
            remote = f"{staging}/{name}"
            await _make_dir(ctx, number, remote, False)
            uploaded[key] = await _upload(ctx, number, local, remote)
    comm = await communicator(ctx)
    config_path = f"{staging}/solo.rb"
    config = solo_rb(
        cookbooks,
        uploaded.get("roles", ""),
        uploaded.get("data_bags", ""),
        uploaded.get("environments", ""),
        provisioner.chef_environment or "",
        provisioner.chef_license or "",
    )
    await comm.upload(config.encode(), config_path)
    node = json.loads(provisioner.json)
    if provisioner.run_list:
        node["run_list"] = list(provisioner.run_list)
    json_path = f"{staging}/node.json"
    await comm.upload(json.dumps(node, indent=2, sort_keys=True).encode(), json_path)
    fields = {"ConfigPath": config_path, "JsonPath": json_path, "Sudo": sudo}
    command = _render(
        "chef-solo", provisioner.execute_command or CHEF_SOLO_EXECUTE_COMMAND, fields, ctx
    )
    ctx.say(f"Executing Chef: {command}")
    result = await _run(ctx, number, command)
    if result.exit_status != 0:
        raise ProvisionError(
            f"chef-solo provisioner {number}: chef-solo exited {result.exit_status}"
        )


# --------------------------------------------------------------------------- ansible-local


async def run_ansible_local(
    ctx: BuildContext, number: int, provisioner: AnsibleLocalProvisioner
) -> None:
    provisioner = with_build_data(ctx, provisioner, f"ansible-local provisioner {number}")
    staging = provisioner.staging_directory or (
        f"/tmp/packer-provisioner-ansible-local/{uuid.uuid4()}"
    )
    comm = await communicator(ctx)
    for text in provisioner.playbook_files:  # Packer checks them all before it starts
        if not local_path(ctx, text).is_file():
            raise ProvisionError(
                f"ansible-local provisioner {number}: playbook_files: no such file {text}"
            )
    await _make_dir(ctx, number, staging, False)
    if provisioner.playbook_dir:
        await _upload(ctx, number, provisioner.playbook_dir, staging)
    if not provisioner.playbook_file:
        playbooks = await _playbook_files(ctx, number, provisioner, staging)
    elif provisioner.playbook_dir:
        playbooks = [
            posixpath.join(
                staging,
                local_path(ctx, provisioner.playbook_file)
                .relative_to(local_path(ctx, provisioner.playbook_dir))
                .as_posix(),
            )
        ]
    else:
        name = local_path(ctx, provisioner.playbook_file).name
        playbooks = [await _upload(ctx, number, provisioner.playbook_file, f"{staging}/{name}")]
    if provisioner.inventory_file:
        inventory_name = local_path(ctx, provisioner.inventory_file).name
        inventory = await _upload(
            ctx, number, provisioner.inventory_file, f"{staging}/{inventory_name}"
        )
    else:
        if provisioner.inventory_groups:
            text = "".join(f"[{group}]\n127.0.0.1\n" for group in provisioner.inventory_groups)
        else:
            text = "127.0.0.1\n"
        inventory = f"{staging}/packer-provisioner-ansible-local-inventory.ini"
        await comm.upload(text.encode(), inventory)
    for key, local in (
        ("group_vars", provisioner.group_vars),
        ("host_vars", provisioner.host_vars),
    ):
        if local:
            await _make_dir(ctx, number, f"{staging}/{key}", False)
            await _upload(ctx, number, local, f"{staging}/{key}")
    for role in provisioner.role_paths:
        remote = f"{staging}/roles/{local_path(ctx, role).name}"
        await _make_dir(ctx, number, remote, False)
        await _upload(ctx, number, role, remote)
    for collection in provisioner.collection_paths:
        remote = f"{staging}/collections/{local_path(ctx, collection).name}"
        await _make_dir(ctx, number, remote, False)
        await _upload(ctx, number, collection, remote)
    if provisioner.galaxy_file:
        galaxy = await _upload(
            ctx,
            number,
            provisioner.galaxy_file,
            f"{staging}/{local_path(ctx, provisioner.galaxy_file).name}",
        )
        command = (
            f"cd {shlex.quote(staging)} && {provisioner.galaxy_command} install "
            f"-r {shlex.quote(galaxy)} -p {shlex.quote(staging + '/roles')}"
            + (" -f" if provisioner.galaxy_force_install else "")
        )
        ctx.say(f"Executing Ansible Galaxy: {command}")
        result = await _run(ctx, number, command)
        if result.exit_status != 0:
            raise ProvisionError(
                f"ansible-local provisioner {number}: ansible-galaxy exited {result.exit_status}"
            )
    names = f"packer_build_name={ctx.build_name} packer_builder_type={ctx.builder.type}"
    extra = f'--extra-vars "{names}"'
    if provisioner.extra_arguments:
        extra += " " + " ".join(provisioner.extra_arguments)
    env = ""
    if provisioner.collection_paths:  # Packer adds the uploaded collections to Ansible's path
        env = f"ANSIBLE_COLLECTIONS_PATH=$ANSIBLE_COLLECTIONS_PATH:{staging}/collections "
    for playbook in playbooks:  # one run each, in order, as Packer does
        command = (
            f"cd {staging} && {env}{provisioner.command} {playbook} {extra} -c local -i {inventory}"
        )
        ctx.say(f"Executing Ansible: {command}")
        result = await _run(ctx, number, command)
        if result.exit_status != 0:
            raise ProvisionError(
                f"ansible-local provisioner {number}: ansible-playbook exited {result.exit_status}"
            )
    if provisioner.clean_staging_directory:
        await _clean(ctx, number, staging, False)


async def _playbook_files(
    ctx: BuildContext, number: int, provisioner: AnsibleLocalProvisioner, staging: str
) -> list[str]:
    """Where each of ``playbook_files`` is on the instance, in order. As in Packer, one under
    ``playbook_dir`` is already there (the directory was uploaded); any other is uploaded to
    ``<staging>/<its absolute local path>``, so two of one name do not collide."""
    directory = local_path(ctx, provisioner.playbook_dir) if provisioner.playbook_dir else None
    out = []
    for text in provisioner.playbook_files:
        path = local_path(ctx, text).absolute()
        if directory is not None and path.is_relative_to(directory.absolute()):
            out.append(posixpath.join(staging, path.relative_to(directory.absolute()).as_posix()))
            continue
        remote = staging + path.as_posix()
        ctx.say(f"Uploading playbook file: {path}")
        await _make_dir(ctx, number, posixpath.dirname(remote), False)
        out.append(await _upload(ctx, number, text, remote))
    return out
