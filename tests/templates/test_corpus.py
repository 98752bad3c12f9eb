"""Real-world templates, read as Packer reads them.

``../shared/corpus/`` (next to the checkout) holds amazon-ebs templates from public
repositories, byte for byte; they are test inputs, never copied here, and these tests
skip when the folder is absent. Each entry is loaded with the var-files its authors use
and plausible values for the variables they pass at build time. A template must then
load, or fail only with the one-line "not supported yet" problems of what amibake does
not carry out yet (WinRM, a provisioner type it does not run, ...).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from amibake.core.templates import TemplateError, load
from tests.templates.helpers import NOW, fixed_uuid

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

# What a CI runner or a developer's shell would have set: the templates read these with env().
ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_PROFILE": "default",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLETOKEN",
    "AWS_VPC_ID": "vpc-0a1b2c3d4e5f60718",
    "AWS_SUBNET_ID": "subnet-0a1b2c3d4e5f60718",
    "BUILD_VPC_ID": "vpc-0a1b2c3d4e5f60718",
    "BUILD_SUBNET_ID": "subnet-0a1b2c3d4e5f60718",
    "TRAVIS_VPC_ID": "vpc-0a1b2c3d4e5f60718",
    "TRAVIS_SUBNET_ID": "subnet-0a1b2c3d4e5f60718",
    "BASTION_VPC_ID": "vpc-0a1b2c3d4e5f60718",
    "BASTION_SUBNET_ID": "subnet-0a1b2c3d4e5f60718",
    "TRAVIS_WORKER_AMI": "ami-0a1b2c3d4e5f60718",
    "UBUNTU_TRUSTY_AMI": "ami-0a1b2c3d4e5f60718",
    "SPINNAKER_AWS_DEFAULT_ACCOUNT": "123456789012",
    "SPINNAKER_AWS_DEFAULT_REGION": "us-east-1",
    "USER": "builder",
    "HOME": "/home/builder",
    "GIT_SHA": "0123abc",
}

KUBE = {
    "kubernetes_version": "1.30.2",
    "kubernetes_build_date": "2024-07-12",
    "arch": "x86_64",
    "instance_type": "m5.large",
    "ami_name": "amazon-eks-node-1.30-v20240712",
}

# entry -> (var-files inside the corpus, variables passed with -var)
RUNS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "01-amazon-eks-ami-al2-template.json": (
        ("01-amazon-eks-ami-al2-template-vars.json",),
        KUBE,
    ),
    "02-amazon-eks-ami-al2023-template.json": (
        ("02-amazon-eks-ami-al2023-template-vars.json",),
        {**KUBE, "ami_name": "amazon-eks-node-al2023-x86_64-standard-1.30-v20240712"},
    ),
    "11-packer-aem-generic.json": (
        ("11-packer-aem-generic-vars.json",),
        {
            "devicemap_root": "/dev/sda1",
            "devicemap_data_b": "/dev/sdb",
            "instance_type": "m5.large",
            "source_ami": "ami-0123456789abcdef0",
        },
    ),
    "21-cloud42-packer-templates-packer_encrypted_base_image.json": (
        (),
        {"instance_type": "t3.micro"},
    ),
    "22-cloud42-packer-templates-packer_windows_complex_provisioner.json": (
        (),
        {"instance_type": "t3.medium"},
    ),
    "15-rosco-aws-multi-ebs.json": (
        (),
        {
            "aws_region": "us-east-1",
            "aws_ssh_username": "ubuntu",
            "aws_instance_type": "t3.small",
            "aws_source_ami": "ami-0a1b2c3d4e5f60718",
            "aws_target_ami": "my-app-all-20240712",
            "configDir": "/opt/rosco/config/packer",
            "build_info_url": "https://ci.example.com/job/1",
        },
    ),
    "16-rosco-aws-windows-2012-r2.json": (
        (),
        {
            "aws_region": "us-east-1",
            "aws_winrm_username": "Administrator",
            "aws_instance_type": "t3.medium",
            "aws_source_ami": "ami-0a1b2c3d4e5f60718",
            "aws_target_ami": "my-app-windows-20240712",
            "configDir": "/opt/rosco/config/packer",
            "build_info_url": "https://ci.example.com/job/1",
        },
    ),
    "17-image-builder-packer.json": (
        ("17-image-builder-packer-vars.json",),
        {
            "containerd_image_pull_progress_timeout": "5m",
            "containerd_version": "1.7.20",
            "crictl_version": "1.30.1",
            "kubernetes_cni_deb_version": "1.4.0-1.1",
            "kubernetes_cni_http_source": "https://github.com/containernetworking/plugins/releases/download",
            "kubernetes_cni_rpm_version": "1.4.0",
            "kubernetes_cni_semver": "v1.4.0",
            "kubernetes_cni_source_type": "pkg",
            "kubernetes_container_registry": "registry.k8s.io",
            "kubernetes_deb_gpg_key": "https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key",
            "kubernetes_deb_repo": "https://pkgs.k8s.io/core:/stable:/v1.30/deb/",
            "kubernetes_deb_version": "1.30.2-1.1",
            "kubernetes_http_source": "https://dl.k8s.io/release",
            "kubernetes_load_additional_imgs": "false",
            "kubernetes_rpm_gpg_check": "true",
            "kubernetes_rpm_gpg_key": "https://pkgs.k8s.io/core:/stable:/v1.30/rpm/repodata/repomd.xml.key",
            "kubernetes_rpm_repo": "https://pkgs.k8s.io/core:/stable:/v1.30/rpm/",
            "kubernetes_rpm_version": "1.30.2",
            "kubernetes_semver": "v1.30.2",
            "kubernetes_source_type": "pkg",
            "runc_version": "1.1.13",
        },
    ),
    "24-arcgis-goldenimage-aws.pkr.hcl": (
        (),
        {
            "aws_connection": json.dumps(
                {
                    "instance_type": "t3.large",
                    "win_communicator": "winrm",
                    "winrm_username": "Administrator",
                    "ssh_username": "ubuntu",
                    "user_data_file": "scripts/bootstrap_win.txt",
                    "ssh_private_key_file": "~/.ssh/aws-example-key.pem",
                }
            ),
            "provisioningscripts": '["scripts/linux_setup.sh", "scripts/windows_setup.ps1"]',
            "ansible_playbooks": json.dumps(
                {
                    "arcgisserver_playbook_file": "playbooks/arcgisserver.yml",
                    "arcgisportal_playbook_file": "playbooks/arcgisportal.yml",
                    "arcgisdatastore_playbook_file": "playbooks/arcgisdatastore.yml",
                }
            ),
        },
    ),
    "25-supabase-postgres-stage2-nix-psql.pkr.hcl": ((), {"region": "us-east-1"}),
    "27-nomad-ubuntu-jammy-amd64.pkr.hcl": ((), {"build_sha": "0123abc"}),
    "34-glueops-packer-cde-aws.pkr.hcl": (
        (),
        {
            "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "glueops_codespaces_container_tag": "v0.42.0",
        },
    ),
    "37-govuk-terraform-provisioning-ami.json": (
        (),
        {"vpc_id": "vpc-0a1b2c3d4e5f60718", "subnet_id": "subnet-0a1b2c3d4e5f60718"},
    ),
    "06-gusztavvargadr-packer-ubuntu": (
        (),
        {
            "author": "gusztavvargadr",
            "version": "2404.0.2407",
            "image": "ubuntu-server",
            "provider": "amazon-ebs",
            "build": "native",
            "images": json.dumps(
                {
                    "ubuntu-server": {
                        "core": {"image_description": "Ubuntu Server 24.04 LTS"},
                        "native": {},
                    }
                }
            ),
        },
    ),
    "12-jenkins-infra-packer-images": (
        (),
        {"agent_os_type": "ubuntu", "agent_os_version": "22.04"},
    ),
    "30-amazon-ecs-ami": (
        (),
        {
            "region": "us-east-1",
            "ami_version_al2": "20240712",
            "ami_version_al2023": "20240712",
            "source_ami_al2": "ami-0a1b2c3d4e5f60718",
            "source_ami_al2arm": "ami-0a1b2c3d4e5f60719",
            "source_ami_al2kernel5dot10": "ami-0a1b2c3d4e5f6071a",
            "source_ami_al2kernel5dot10arm": "ami-0a1b2c3d4e5f6071b",
            "source_ami_al2023": "ami-0a1b2c3d4e5f6071c",
            "source_ami_al2023arm": "ami-0a1b2c3d4e5f6071d",
            "kernel_version_al2023": "6.1",
            "kernel_version_al2023arm": "6.1",
        },
    ),
    "44-amazon-eks-custom-amis": (("44-amazon-eks-custom-amis/al2_amd64.pkrvars.hcl",), {}),
    "46-gitlab-runner-example-ubuntu-docker-ami": (
        ("46-gitlab-runner-example-ubuntu-docker-ami/amd64.pkrvars.hcl",),
        {
            "ami_name": "gitlab-runner-docker",
            "ami_description": "GitLab runner with Docker",
            "aws_region": "us-east-1",
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "subnet_id": "subnet-0a1b2c3d4e5f60718",
        },
    ),
    "50-hashicorp-c2m": (
        (),
        {"aws_region": "us-east-1", "aws_source_ami": "ami-0a1b2c3d4e5f60718"},
    ),
}


# Files the templates read with file()/templatefile() that live elsewhere in their authors'
# repositories (not part of the corpus): plausible stand-ins, written next to a copy of
# the entry. Paths are relative to the entry's folder (its own folder for a single file).
COMPANIONS: dict[str, dict[str, str]] = {
    "12-jenkins-infra-packer-images": {
        "images-versions.yaml": (
            "aws:\n  ubuntu:\n    '22.04':\n      amd64: ami-0a1b2c3d4e5f60718\n"
            "      arm64: ami-0a1b2c3d4e5f60719\n"
            "azure:\n  ubuntu:\n    '22.04':\n      amd64: 1.0.0\n"
            "docker:\n  ubuntu:\n    '22.04':\n      amd64: jammy-20240627\n"
        ),
        "jdks-infos.yaml": (
            "ubuntu:\n  amd64:\n    jdk17:\n"
            "      installer_url: https://example.com/jdk17.tar.gz\n"
            "      checksum_value: 0123abcd\n"
        ),
        "provisioning/tools-versions.yml": "git_version: 2.45.2\nmaven_version: 3.9.8\n",
    },
    "14-terraform-aws-github-runner-github_agent.windows.pkr.hcl": {
        "../start-runner.ps1": "${start_runner}\n",
        "../../modules/runners/templates/start-runner.ps1": "Write-Host 'start runner'\n",
        "windows-provisioner.ps1": "Invoke-WebRequest ${action_runner_url}\n",
    },
    "46-gitlab-runner-example-ubuntu-docker-ami": {
        "configurations/bootstrap.sh.tpl": "#!/bin/sh\necho mirror ${docker_mirror}\n",
    },
}


def corpus_entries() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        p.name
        for p in CORPUS.iterdir()
        if p.name != "SOURCES.md"
        and not p.name.endswith("-vars.json")
        and (p.is_dir() or p.suffix in (".json", ".hcl"))
    )


def entry_path(name: str, scratch: Path) -> Path:
    """The entry itself, or a copy of it in ``scratch`` with its companion files beside it."""
    companions = COMPANIONS.get(name)
    if not companions:
        return CORPUS / name
    source = CORPUS / name
    home = scratch / "repo" / "images" / "entry"  # room for companions above the entry
    if source.is_dir():
        shutil.copytree(source, home)
        copied = home
    else:
        home.mkdir(parents=True)
        copied = home / name
        shutil.copyfile(source, copied)
    for relative, text in companions.items():
        target = (home / relative).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return copied


def load_entry(name: str, scratch: Path) -> Any:
    var_files, variables = RUNS.get(name, ((), {}))
    return load(
        entry_path(name, scratch),
        vars=list(variables.items()),
        var_files=[CORPUS / f for f in var_files],
        env=ENV,
        now=NOW,
        uuid_factory=fixed_uuid,
    )


NOT_SUPPORTED_YET = "not supported yet"

# Problems Packer reports too, with these templates as published: their authors ship a
# placeholder that a user replaces before building.
PACKER_REJECTS_TOO: dict[str, tuple[str, ...]] = {
    # `"kms_key_id": "KMS_KEY_ARN"`: Packer's ValidateKmsKey refuses it ("... is not a valid
    # KMS Key Id"), as amibake does.
    "21-cloud42-packer-templates-packer_encrypted_base_image.json": ("kms_key_id",),
}


def remaining_problems(name: str, scratch: Path) -> list[str]:
    """The problems that are not "not supported yet" lines (empty: Packer-compatible)."""
    try:
        load_entry(name, scratch)
    except TemplateError as error:
        expected = PACKER_REJECTS_TOO.get(name, ())
        return [
            str(p)
            for p in error.problems
            if NOT_SUPPORTED_YET not in p.message and not p.path.endswith(expected or ("\0",))
        ]
    return []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not next to this checkout")
@pytest.mark.parametrize("name", corpus_entries() or ["(none)"])
def test_a_real_template_loads_or_names_only_what_is_not_supported_yet(
    name: str, tmp_path: Path
) -> None:
    assert remaining_problems(name, tmp_path) == []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not next to this checkout")
def test_every_var_run_names_an_entry_of_the_corpus() -> None:
    # A renamed corpus entry must not silently lose its variables.
    assert set(RUNS) | set(COMPANIONS) | set(PACKER_REJECTS_TOO) <= set(corpus_entries())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not next to this checkout")
@pytest.mark.parametrize("name", sorted(PACKER_REJECTS_TOO))
def test_what_packer_rejects_too_is_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        load_entry(name, tmp_path)
    paths = [p.path for p in caught.value.problems if NOT_SUPPORTED_YET not in p.message]
    assert paths and all(p.endswith(PACKER_REJECTS_TOO[name]) for p in paths)
