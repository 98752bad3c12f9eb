"""The headless commands, through amibake.tui.cli.main."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from amibake.tui.cli import main

from .helpers import FIXTURES


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(FIXTURES / "seed.json"))
    assert code == 0
    assert out == f"{FIXTURES / 'seed.json'}: valid (1 builder(s): amazon-ebs; 1 provisioner(s))\n"
    assert err == ""


def test_validate_with_vars(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    var_file = tmp_path / "v.json"
    var_file.write_text('{"region": "eu-west-2"}')
    code, _, err = run(
        capsys,
        "validate",
        str(FIXTURES / "full.pkr.hcl"),
        "--var-file",
        str(var_file),
        "--var",
        "required_var=x",
    )
    # valid; what it names on this machine and is not here is a located warning each, as
    # Packer's validate fails on them (a build would stop on them before creating anything)
    assert code == 0
    missing = [line.split(": ")[3] for line in err.splitlines()]
    assert missing == [
        "source.amazon-ebs.web.ssh_private_key_file",
        "build.provisioner[0].source",
        "build.provisioner[3].scripts",  # [2] runs for no build here (except): never checked
        "build.provisioner[3].scripts",
    ], err
    assert all(
        line.startswith(f"amibake: warning: {FIXTURES / 'full.pkr.hcl'}:")
        and "is not there" in line
        for line in err.splitlines()
    )


def test_validate_reports_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        (FIXTURES / "seed.json")
        .read_text()
        .replace('"t2.micro"', '"tiny"')
        .replace('"ssh_username"', '"ssh_usernme"')
    )
    code, out, err = run(capsys, "validate", str(path))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"amibake: error: {path}:7:1: builders[0].ssh_username: `ssh_username` is required",
        f"amibake: error: {path}:12:18: builders[0].instance_type: `tiny` is not an EC2"
        " instance type (expected family.size, e.g. t3.micro)",
        f"amibake: error: {path}:13:1: builders[0].ssh_usernme: unknown option `ssh_usernme`;"
        " did you mean `ssh_username`?",
        "amibake: 3 problems",
    ]


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.json"))
    assert code == 2
    assert (
        err == f"amibake: error: cannot read {tmp_path / 'nope.json'}: No such file or directory\n"
    )


def test_bad_var_flag_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate", str(FIXTURES / "seed.json"), "--var", "novalue"])
    assert caught.value.code == 2
    assert "expected NAME=VALUE, got `novalue`" in capsys.readouterr().err


def test_inspect_hides_sensitive_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", str(FIXTURES / "full.json"), "--var", "required_var=x")
    assert code == 0, err
    assert "s3cr3t-pa55" not in out
    assert "  db_password = <sensitive>" in out
    assert "  web (amazon-ebs)" in out
    assert "  2. shell: 2 inline command(s)" in out
    assert "    region: eu-west-1  instance_type: t3.micro" in out


def test_fmt_hcl(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        '# keep me\nsource "amazon-ebs" "x" {\nregion = "us-east-1" # and me\n'
        '      instance_type="t2.micro"\n\n\n\n  tags = {\n  a = "1"\n    bbb = "2"\n  }\n'
        "  user_data = <<EOT\n   raw   body\nEOT\n}\n"
    )
    code, out, _ = run(capsys, "fmt", str(path))
    assert code == 0
    assert out == (
        "# keep me\n"
        'source "amazon-ebs" "x" {\n'
        '  region        = "us-east-1" # and me\n'
        '  instance_type = "t2.micro"\n'
        "\n"
        "  tags = {\n"
        '    a   = "1"\n'
        '    bbb = "2"\n'
        "  }\n"
        "  user_data = <<EOT\n"
        "   raw   body\n"
        "EOT\n"
        "}\n"
    )
    assert run(capsys, "fmt", "--check", str(path))[0] == 1
    assert run(capsys, "fmt", "--write", str(path))[0] == 0
    assert path.read_text() == out
    assert run(capsys, "fmt", "--check", str(path))[0] == 0


def test_fmt_fixtures_are_stable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fmt", str(FIXTURES / "full.pkr.hcl"))
    assert code == 0
    assert out == (FIXTURES / "full.pkr.hcl").read_text()


def test_fmt_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fmt", str(FIXTURES / "seed.json"))
    assert code == 0
    assert out.startswith('{\n  "variables": {\n    "aws_region": "us-east-1",\n')
    assert run(capsys, "fmt", "--check", str(FIXTURES / "seed.json"))[0] == 1


def test_fmt_syntax_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("a = [\n")
    code, _, err = run(capsys, "fmt", str(path))
    assert code == 2
    assert err.startswith(f"amibake: error: {path}:")


def test_convert(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "seed.toml"
    code, out, _ = run(
        capsys, "convert", str(FIXTURES / "seed.json"), "--to", "toml", "-o", str(out_file)
    )
    assert (code, out) == (0, "")
    assert 'ami_name = "my-nginx-ami-${unix_timestamp()}"' in out_file.read_text()
    code, out, _ = run(capsys, "validate", str(out_file))
    assert code == 0
    code, out, _ = run(capsys, "convert", str(out_file), "--to", "json")
    assert code == 0
    assert '"ami_name": "my-nginx-ami-{{timestamp}}"' in out


def test_convert_needs_to(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["convert", str(FIXTURES / "seed.json")])
    assert caught.value.code == 2


def test_commands_do_not_import_textual() -> None:
    code = (
        "import sys, amibake.tui.cli, amibake.tui.cli.templates, amibake.core.templates,"
        " amibake.core.model;"
        "amibake.tui.cli.build_parser();"
        "from amibake.core.templates import load; load('tests/templates/fixtures/seed.json');"
        "bad = [m for m in ('textual', 'rich') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
