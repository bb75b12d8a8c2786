"""Writing files: a full disk is exit 3 naming the file, finished results are kept and a
re-run resumes; modes follow the umask or the replaced file; mmbench overwrites only files
it generated."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_result_files import SUITE  # three seeds of one tiny dataset and fusion

from mmbench.files import write_text_atomic


def fill_disk_after(monkeypatch, folder: str, results: int) -> None:
    """Once ``results`` result files are written under ``folder``, every write there fails
    (in fsync, as a full disk does) with ENOSPC."""
    real, written = os.fsync, []

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if f"/{folder}/" in target:
            if len(written) >= results:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if ".json." in target:  # the temporary file of <run_id>.json
                written.append(target)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the file of an fd in /proc")
def test_a_full_disk_is_exit_3_naming_the_file_and_a_rerun_resumes(tmp_path, monkeypatch, write_suite, run_cli):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(SUITE)
    with monkeypatch.context() as patch:
        fill_disk_after(patch, "results/tiny", results=1)
        out = run_cli("run", suite)
    assert out.code == 3
    assert "Traceback" not in out.err
    err = " ".join(out.err.split())
    assert "could not write results/tiny/" in err and ": No space left on device." in err
    assert "Finished results are kept" in err and "run the same command again" in err
    kept = sorted((tmp_path / "results" / "tiny").iterdir())
    assert len([p for p in kept if p.suffix == ".json"]) == 1  # the one written before the disk filled
    assert not [p for p in kept if p.name.endswith(".tmp")]  # no half-written file left behind

    again = run_cli("run", suite)
    assert again.code == 0
    assert "2 runs finished, 0 failed, 1 skipped" in " ".join(again.out.split())


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_follow_the_umask(tmp_path, umask, expected):
    before = os.umask(umask)
    try:
        path = write_text_atomic(tmp_path / "new.json", "{}\n")
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == expected


def test_a_replaced_file_keeps_its_mode(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("old\n")
    readme.chmod(0o640)
    write_text_atomic(readme, "new\n")
    assert readme.read_text() == "new\n" and stat.S_IMODE(readme.stat().st_mode) == 0o640


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 96 KiB tmpfs (a real full disk), where mounting one is allowed (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_really_full_disk_keeps_finished_results_and_resumes(tiny_tmpfs, tmp_path, workers):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2, 3, 4, 5, 6, 7]")
                     + f'\n[report]\nresults = "{tiny_tmpfs}"\n')
    env = {**os.environ, "COLUMNS": "100"}

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mmbench", "run", str(suite), "--workers", workers],
                              cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)

    ballast = tiny_tmpfs / "ballast"
    ballast.write_bytes(b"\0" * 60 * 1024)  # what else fills the disk
    full = run()
    assert full.returncode == 3, full.stderr
    assert "Traceback" not in full.stderr
    assert f"could not write {tiny_tmpfs}/tiny/" in full.stderr.replace("\n", "")
    assert "No space left on device" in full.stderr
    kept = list((tiny_tmpfs / "tiny").iterdir())
    assert not [p for p in kept if p.name.endswith(".tmp")]
    for path in (p for p in kept if p.suffix == ".json"):
        assert json.loads(path.read_text())["status"] == "ok"  # whole files only
    ballast.unlink()  # space freed: the same command finishes the rest
    again = run()
    assert again.returncode == 0, again.stderr
    assert len(list((tiny_tmpfs / "tiny").glob("*.json"))) == 8


@pytest.fixture
def finished_suite(tmp_path, monkeypatch, write_suite, run_cli):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(SUITE.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"))
    assert run_cli("run", suite).code == 0
    return suite


def test_output_dot_never_overwrites_the_projects_readme(finished_suite, tmp_path, run_cli):
    readme = tmp_path / "README.md"
    readme.write_text("# My project\n\nHand-written.\n")
    out = run_cli("leaderboard", finished_suite, "--output", ".")
    assert out.code == 2
    assert "README.md exists and was not generated by mmbench" in " ".join(out.err.split())
    assert readme.read_text() == "# My project\n\nHand-written.\n"
    # the same from the suite's [report] output, through `run`
    finished_suite.write_text(finished_suite.read_text() + '\n[report]\noutput = "."\n')
    assert run_cli("run", finished_suite).code == 2
    assert readme.read_text() == "# My project\n\nHand-written.\n"


@pytest.mark.parametrize("name", ["README.md", "index.html"])
def test_a_refused_file_stops_the_leaderboard_before_any_file_is_written(finished_suite, tmp_path, run_cli, name):
    """The index pages are written last (they embed the others' files), so each reporter's
    targets are checked before any reporter writes: nothing lands beside the user's file."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / name).write_text("hand-written\n")
    out = run_cli("leaderboard", finished_suite, "--output", folder)
    assert out.code == 2 and f"{folder / name} exists and was not generated by mmbench" in " ".join(out.err.split())
    assert [p.name for p in folder.rglob("*")] == [name] and (folder / name).read_text() == "hand-written\n"


@pytest.mark.parametrize("name", ["tiny.md", "tiny.csv", "tiny.json", "tiny.html", "index.html"])
def test_a_users_file_where_a_leaderboard_file_goes_is_refused_by_name(finished_suite, tmp_path, run_cli, name):
    mine = tmp_path / "leaderboard" / name
    mine.write_text("mine\n")
    out = run_cli("leaderboard", finished_suite)
    assert out.code == 2 and f"{Path('leaderboard', name)} exists and was not generated" in " ".join(out.err.split())
    assert mine.read_text() == "mine\n"


def test_generated_files_stay_overwritable_and_keep_their_mark(finished_suite, tmp_path, run_cli):
    board = tmp_path / "leaderboard"
    before = {p: p.read_bytes() for p in board.rglob("*") if p.is_file()}
    assert run_cli("leaderboard", finished_suite).code == 0
    assert {p: p.read_bytes() for p in board.rglob("*") if p.is_file()} == before  # byte-identical
    assert (board / "tiny.md").read_text().startswith("<!-- generated by mmbench")
    assert json.loads((board / "tiny.json").read_text())["generated_by"] == "mmbench leaderboard"


def test_the_committed_leaderboards_carry_the_mark():
    from mmbench_reporters.plots import is_png_ours
    from mmbench_reporters.site import is_html_ours
    from mmbench_reporters.tables import is_csv_ours, is_json_ours, is_markdown_ours

    folder = Path(__file__).resolve().parent.parent / "leaderboard"
    check = {".md": is_markdown_ours, ".csv": is_csv_ours, ".json": is_json_ours, ".png": is_png_ours,
             ".html": is_html_ours}
    files = [p for p in folder.rglob("*") if p.suffix in check]
    assert files and all(check[p.suffix](p.read_bytes()) for p in files)
    assert all(p.read_bytes().startswith(b"<!-- generated by mmbench") for p in files if p.suffix == ".md")


def test_a_users_image_in_the_plots_folder_is_never_removed(finished_suite, tmp_path, run_cli):
    from PIL import Image

    mine = tmp_path / "leaderboard" / "tiny" / "pareto_holiday.png"
    Image.new("RGB", (4, 4)).save(mine, pnginfo=_software("GIMP"))
    assert run_cli("leaderboard", finished_suite).code == 0
    assert mine.exists()


def _software(name: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", name)
    return info
