"""amibake.core.targets: profiles from the AWS files, the default target, credential messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from amibake.core.aws import Aws, CredentialsError, Target
from amibake.core.local.cloud import LocalCloud
from amibake.core.targets import check_credentials, default_target, list_regions, list_targets


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_no_credentials_preselects_the_local_cloud() -> None:
    assert [t.key for t in list_targets()] == ["local"]
    assert default_target(None) == "local"
    assert default_target("profile:gone") == "local"


def test_profiles_are_listed_and_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path,
        monkeypatch,
        "[default]\nregion = eu-west-1\n[profile b]\nsso_session = corp\n[profile a]\n",
    )
    targets = list_targets()
    assert [t.key for t in targets] == ["local", "profile:a", "profile:b", "profile:default"]
    assert targets[2].kind == "sso" and targets[3].region == "eu-west-1"
    assert default_target(None) == "profile:default"
    assert default_target("profile:a") == "profile:a"
    assert default_target("local") == "local"


async def test_credential_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud
) -> None:
    write_config(
        tmp_path,
        monkeypatch,
        "[profile empty]\nregion = us-east-1\n"
        "[profile sso]\nsso_start_url = https://sso.invalid/start\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = Admin\n"
        "[profile dev]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        f"endpoint_url = {cloud.endpoint_url}\n",
    )
    with pytest.raises(CredentialsError, match="profile 'empty' has no usable credentials"):
        await check_credentials(Aws(Target(profile="empty")), "us-east-1")
    with pytest.raises(CredentialsError, match="aws sso login --profile sso"):
        await check_credentials(Aws(Target(profile="sso")), "us-east-1")
    dev = Aws(Target(profile="dev"))
    assert await check_credentials(dev, "us-east-1") == cloud.account_id
    regions = await list_regions(dev, "us-east-1")
    assert "us-east-1" in regions and "eu-west-1" in regions


def test_the_app_refuses_an_unknown_profile_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from amibake.tui.cli import main

    write_config(tmp_path, monkeypatch, "[profile dev]\nregion = us-east-1\n[profile prod]\n")
    assert main(["--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "amibake: error: no AWS profile 'nope' (profiles: dev, prod)\n"
