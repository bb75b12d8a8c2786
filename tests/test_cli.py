"""The command line: fast help, versions, exit codes."""

import subprocess
import sys

from mmbench import __version__
from mmbench.cli import main


def test_help_does_not_import_torch_or_the_plugins():
    code = ("import sys; from mmbench.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('torch', 'sklearn', 'pandas', 'mmbench_fusion') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_mmbench_answers_help():
    out = subprocess.run([sys.executable, "-m", "mmbench", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "validate" in out.stdout and "leaderboard" in out.stdout


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_missing_suite_file_is_a_usage_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "no such suite file" in capsys.readouterr().err
