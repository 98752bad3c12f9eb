"""amibake.core.settings: TOML round trip; a broken file gives defaults and is never overwritten."""

from __future__ import annotations

from pathlib import Path

from amibake.core.paths import expand_home
from amibake.core.settings import BUILTIN_OWNER_PRESETS, Settings


def test_round_trip(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    assert settings.load_error is None and settings.owner == "canonical"
    settings.target = "profile:dev"
    settings.region = "eu-west-1"
    settings.keymap = {"browser.filter": "f"}
    settings.owner_presets = {"team": ["111122223333"]}
    settings.remember_template(tmp_path / "a.pkr.hcl")
    settings.remember_template(tmp_path / "b.json")
    settings.remember_template(tmp_path / "a.pkr.hcl")
    assert settings.save()
    again = Settings.load(tmp_path / "settings.toml")
    assert again.to_toml() == settings.to_toml()
    assert again.recent_templates[0].endswith("a.pkr.hcl") and len(again.recent_templates) == 2
    assert again.owner_preset("team").owners == ("111122223333",)
    assert again.owner_preset("123456789012").owners == ("123456789012",)
    assert [p.key for p in again.all_owner_presets()][: len(BUILTIN_OWNER_PRESETS)] == [
        p.key for p in BUILTIN_OWNER_PRESETS
    ]


def test_broken_file_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    for text in ("theme = [oops\n", "[session]\nregion = 3\n", "keymap = 1\n"):
        path.write_text(text)
        settings = Settings.load(path)
        assert settings.load_error and str(path) in settings.load_error
        assert settings.region == "us-east-1"
        settings.region = "eu-west-1"
        assert settings.save() is False
        assert path.read_text() == text


def test_a_home_of_no_user_here_stays_a_path(tmp_path: Path) -> None:
    """``~someone`` of no user on this machine (pathlib's expanduser raises on it) is kept as
    written, wherever a path typed or read is expanded: no traceback."""
    assert expand_home("~/x") == Path.home() / "x"
    assert expand_home("~no-such-user-here/t.json") == Path("~no-such-user-here/t.json")
    settings = Settings.load(tmp_path / "settings.toml")
    settings.remember_template("~no-such-user-here/t.json")
    assert settings.recent_templates[0].endswith("~no-such-user-here/t.json")
