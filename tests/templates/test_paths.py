"""Relative paths of a template's options (core/templates/paths.py): Packer's plugins open
them relative to the working directory (provisioner/file: os.Stat(src); the amazon
step_key_pair: ReadSSHPrivateKeyFile), HCL's functions relative to ``path.root`` (hcl2template
parser.go: the file's directory, or the folder template itself). amibake falls back to
``path.root`` for a file the working directory lacks."""

from __future__ import annotations

from pathlib import Path

from amibake.core.templates import load
from amibake.core.templates.paths import local_path, template_root

HCL = """
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "paths"
}
build {
  sources = ["source.amazon-ebs.x"]
  provisioner "file" {
    source      = "files/app.conf"
    destination = "/tmp/app.conf"
  }
  provisioner "shell" { inline = ["echo ${path.root}"] }
}
"""


def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """work/ (the working directory), work/project/ (a folder template), outside/."""
    work, outside = tmp_path / "work", tmp_path / "outside"
    folder = work / "project"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "app.conf").write_text("x")
    (folder / "main.pkr.hcl").write_text(HCL)
    outside.mkdir()
    return work, folder, outside


def test_the_root_of_a_folder_template_is_the_folder_itself(tmp_path: Path) -> None:
    _, folder, outside = layout(tmp_path)
    spec = load(folder)
    assert template_root(spec) == folder
    # relative to path.root when the working directory has no such file
    assert local_path(spec, "files/app.conf", cwd=outside) == folder / "files" / "app.conf"
    # HCL's path.root agrees
    (_, shell) = spec.provisioners
    assert shell.inline == (f"echo {folder.resolve()}",)  # type: ignore[attr-defined]


def test_the_root_of_a_file_template_is_its_directory(tmp_path: Path) -> None:
    _, folder, outside = layout(tmp_path)
    spec = load(folder / "main.pkr.hcl")
    assert template_root(spec) == folder
    assert local_path(spec, "files/app.conf", cwd=outside) == folder / "files" / "app.conf"


def test_the_working_directory_wins_as_in_packer(tmp_path: Path) -> None:
    work, folder, _ = layout(tmp_path)
    (work / "files").mkdir()
    (work / "files" / "app.conf").write_text("from the working directory")
    for spec in (load(folder), load(folder / "main.pkr.hcl")):
        assert local_path(spec, "files/app.conf", cwd=work) == work / "files" / "app.conf"
        # a path the working directory holds, as `packer build project/` from work/ reads it
        assert local_path(spec, "project/files/app.conf", cwd=work) == (
            work / "project" / "files" / "app.conf"
        )
    assert local_path(load(folder), "/abs/key", cwd=work) == Path("/abs/key")


def test_missing_everywhere_names_the_working_directory_path(tmp_path: Path) -> None:
    _, folder, outside = layout(tmp_path)
    assert local_path(load(folder), "nope.txt", cwd=outside) == outside / "nope.txt"


def test_written_paths_follow_the_working_directory_of_a_project(tmp_path: Path) -> None:
    work, folder, outside = layout(tmp_path)
    spec = load(folder)
    # run from the project (the template lies inside the working directory): as Packer
    assert local_path(spec, "back/", write=True, cwd=work) == work / "back"
    # started elsewhere (the app opened in another folder): next to the template
    assert local_path(spec, "back/", write=True, cwd=outside) == folder / "back"
