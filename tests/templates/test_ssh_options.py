"""The SSH communicator options of amazon-ebs (issue 12), decoded as Packer's communicator
config (packer-plugin-sdk communicator/config.go) prepares and validates them."""

from __future__ import annotations

from typing import Any

import pytest

from amibake.core.model import AmazonEbsBuilder, SshBastion, SshProxy

from .helpers import hcl_builder, json_builder, load_text, problems_of


def builder(**options: Any) -> AmazonEbsBuilder:
    return load_text(json_builder(**options)).builders[0]


def test_defaults_are_packers() -> None:
    b = builder()
    assert b.ssh_timeout == 300.0
    assert b.ssh_keep_alive_interval == 5.0
    assert b.ssh_handshake_attempts is None
    assert (b.ssh_pty, b.ssh_agent_auth, b.ssh_clear_authorized_keys) == (False, False, False)
    assert b.ssh_bastion is None and b.ssh_proxy is None
    assert b.pause_before_connecting == 0.0
    # Packer's docs say 10s; builder/common/run_config.go's Prepare sets no default (0: no wait)
    assert b.pause_before_ssm == 0.0
    # amibake's one different default (Packer: scp); see the README
    assert b.ssh_file_transfer_method == "sftp"


def test_every_ssh_option_decodes_in_hcl() -> None:
    spec = load_text(
        hcl_builder(
            """
  ami_name                     = "x-ami"
  ssh_agent_auth               = false
  ssh_pty                      = true
  ssh_password                 = "hunter2"
  ssh_clear_authorized_keys    = true
  pause_before_connecting      = "1m30s"
  ssh_handshake_attempts       = 20
  ssh_keep_alive_interval      = "-1s"
  ssh_read_write_timeout       = "5m"
  ssh_timeout                  = "10m"
  temporary_key_pair_name      = "packer-temp"
  ssh_ciphers                  = ["aes128-gcm@openssh.com", "aes256-ctr"]
  ssh_key_exchange_algorithms  = ["curve25519-sha256@libssh.org"]
  ssh_file_transfer_method     = "scp"
  ssh_local_tunnels            = ["8080:localhost:3000"]
  ssh_remote_tunnels           = ["9090:127.0.0.1:80"]
  ssh_disable_agent_forwarding = true
""",
        ),
        "hcl",
    )
    b = spec.builders[0]
    assert b.ssh_pty and b.ssh_clear_authorized_keys and b.ssh_disable_agent_forwarding
    assert b.ssh_password == "hunter2"
    assert b.pause_before_connecting == 90.0
    assert b.ssh_handshake_attempts == 20
    assert b.ssh_keep_alive_interval == 0.0  # negative: disabled
    assert b.ssh_read_write_timeout == 300.0
    assert b.ssh_timeout == 600.0
    assert b.temporary_key_pair_name == "packer-temp"
    assert b.ssh_ciphers == ("aes128-gcm@openssh.com", "aes256-ctr")
    assert b.ssh_key_exchange_algorithms == ("curve25519-sha256@libssh.org",)
    assert b.ssh_file_transfer_method == "scp"
    assert b.ssh_local_tunnels == ("8080:localhost:3000",)
    assert b.ssh_remote_tunnels == ("9090:127.0.0.1:80",)


def test_ssh_wait_timeout_is_the_old_name_and_wins() -> None:
    assert builder(ssh_wait_timeout="2m").ssh_timeout == 120.0
    assert builder(ssh_timeout="1m", ssh_wait_timeout="3m").ssh_timeout == 180.0


def test_bastion_defaults_port_22_and_the_instance_key() -> None:
    b = builder(
        ssh_bastion_host="bastion.example.com",
        ssh_bastion_username="jump",
        ssh_private_key_file="~/.ssh/id_ed25519",
        ssh_certificate_file="~/.ssh/id_ed25519-cert.pub",
    )
    assert b.ssh_bastion == SshBastion(
        host="bastion.example.com",
        port=22,
        username="jump",
        private_key_file="~/.ssh/id_ed25519",
        certificate_file="~/.ssh/id_ed25519-cert.pub",
    )


def test_bastion_options_in_full() -> None:
    b = builder(
        ssh_bastion_host="10.0.0.1",
        ssh_bastion_port="2200",
        ssh_bastion_username="u",
        ssh_bastion_password="p",
        ssh_bastion_interactive=True,
        ssh_bastion_agent_auth="false",
        ssh_bastion_private_key_file="k",
        ssh_bastion_certificate_file="k-cert.pub",
    )
    assert b.ssh_bastion == SshBastion(
        host="10.0.0.1",
        port=2200,
        username="u",
        password="p",
        interactive=True,
        private_key_file="k",
        certificate_file="k-cert.pub",
    )


def test_proxy_defaults_port_1080() -> None:
    b = builder(ssh_proxy_host="127.0.0.1", ssh_proxy_username="u", ssh_proxy_password="p")
    assert b.ssh_proxy == SshProxy(host="127.0.0.1", port=1080, username="u", password="p")


def test_ipv6_and_session_manager_interfaces() -> None:
    assert builder(ssh_interface="ipv6").ssh_interface == "ipv6"
    b = builder(
        ssh_interface="session_manager",
        iam_instance_profile="ssm-profile",
        session_manager_port="8022",
        pause_before_ssm="30s",
    )
    assert (b.ssh_interface, b.session_manager_port, b.pause_before_ssm) == (
        "session_manager",
        8022,
        30.0,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"ssh_certificate_file": "c.pub"},
            "t.json:10:31: builders[0].ssh_certificate_file: `ssh_private_key_file` must be "
            "specified if `ssh_certificate_file` is specified",
        ),
        (
            {"ssh_bastion_host": "b"},
            "t.json:10:27: builders[0].ssh_bastion_host: `ssh_bastion_password`, "
            "`ssh_bastion_private_key_file` or `ssh_bastion_agent_auth` must be specified",
        ),
        (
            {"ssh_bastion_host": "b", "ssh_bastion_password": "p", "ssh_proxy_host": "q"},
            "t.json:12:25: builders[0].ssh_proxy_host: please specify either "
            "`ssh_bastion_host` or `ssh_proxy_host`, not both",
        ),
        (
            {"ssh_file_transfer_method": "rsync"},
            "t.json:10:35: builders[0].ssh_file_transfer_method: expected one of scp, sftp, "
            "got `rsync`",
        ),
        (
            {"ssh_local_tunnels": ["8080"]},
            "t.json:10:28: builders[0].ssh_local_tunnels: `8080` is not a tunnel: expected "
            "`port:host:hostport` (e.g. `8080:localhost:80`)",
        ),
        (
            {"ssh_remote_tunnels": ["x:localhost:80"]},
            "t.json:10:29: builders[0].ssh_remote_tunnels: `x:localhost:80` is not a tunnel: "
            "expected `port:host:hostport` (e.g. `8080:localhost:80`)",
        ),
        (
            {"ssh_ciphers": ["aes128-ctr", "rot13"]},
            "t.json:10:22: builders[0].ssh_ciphers: `rot13` is not supported yet by amibake's "
            "SSH client",
        ),
        (
            {"ssh_interface": "session_manager"},
            "t.json:10:24: builders[0].ssh_interface: `session_manager` needs "
            "`iam_instance_profile` (with AmazonSSMManagedInstanceCore) or "
            "`temporary_iam_instance_profile_policy_document`",
        ),
        (
            {"ssh_keypair_name": "mine"},
            "t.json:10:27: builders[0].ssh_private_key_file: `ssh_private_key_file` or "
            "`ssh_agent_auth` is required with `ssh_keypair_name`",
        ),
        (
            {"ssh_keep_alive_interval": "-often"},
            "t.json:10:34: builders[0].ssh_keep_alive_interval: expected a duration such as "
            '"10s" (negative: disabled), got `-often`',
        ),
    ],
)
def test_invalid_ssh_options_are_located_errors(options: dict[str, Any], message: str) -> None:
    assert problems_of(json_builder(**options)) == [message]


def test_agent_auth_with_a_named_key_pair_needs_no_key_file() -> None:
    b = builder(ssh_keypair_name="mine", ssh_agent_auth=True)
    assert (b.ssh_keypair_name, b.ssh_agent_auth) == ("mine", True)


@pytest.mark.parametrize("key", ["ssh_private_key", "ssh_public_key"])
def test_packers_internal_key_options_name_the_real_one(key: str) -> None:
    assert problems_of(json_builder(**{key: "x"})) == [
        f"t.json:10:7: builders[0].{key}: `{key}` is not supported yet by amibake "
        "(Packer's internal copy of the key: use `ssh_private_key_file`)"
    ]


def test_ssh_passwords_are_sensitive() -> None:
    spec = load_text(
        json_builder(
            ssh_password="pw-one",
            ssh_bastion_host="b",
            ssh_bastion_password="pw-two",
        )
    )
    assert {"pw-one", "pw-two"} <= spec.sensitive_values
    assert spec.redact("login pw-one via pw-two") == "login <sensitive> via <sensitive>"
