"""`mmbench new KIND NAME` writes a package that installs and passes its own tests untouched."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mmbench.scaffold import KINDS
from mmbench.testing import check_plugin

FILES = ["pyproject.toml", "README.md", "suite.toml", "src/mmbench_{name}/__init__.py",
         "src/mmbench_{name}/plugin.py", "tests/test_{name}.py"]


@pytest.mark.parametrize("kind", KINDS)
def test_new_writes_a_package_whose_plugin_passes_the_kit(kind, run_cli, tmp_path, monkeypatch):
    name = f"my_{kind}"
    result = run_cli("new", kind, name, "--dir", tmp_path)

    assert result.code == 0, result.err
    root = tmp_path / f"mmbench-{name}"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(
        f.format(name=name) for f in FILES)
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == f"mmbench-{name}"
    assert project["project"]["entry-points"]["mmbench"] == {name: f"mmbench_{name}"}
    assert "test" in project["project"]["optional-dependencies"]
    monkeypatch.syspath_prepend(str(root / "src"))
    module = importlib.import_module(f"mmbench_{name}.plugin")
    cls = next(v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == name)
    assert cls.kind == kind and len(cls.parameters) == 1  # one typed parameter to start from
    check_plugin(cls)
    for mod in [m for m in sys.modules if m.startswith(f"mmbench_{name}")]:
        del sys.modules[mod]


def test_new_refuses_bad_names_kinds_and_existing_folders(run_cli, tmp_path):
    assert run_cli("new", "fusion", "My-Fusion", "--dir", tmp_path).code == 2
    assert run_cli("new", "fusion", "ok_name", "--dir", tmp_path).code == 0
    again = run_cli("new", "fusion", "ok_name", "--dir", tmp_path)
    assert again.code == 2 and "already exists" in again.err


def test_the_templates_ship_as_package_data():
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    shipped = project["tool"]["setuptools"]["package-data"]["mmbench.scaffold"]
    templates = {p.name for p in (Path(__file__).parents[1] / "mmbench" / "scaffold").glob("*.tmpl")}
    assert shipped == ["*.tmpl"] and len(templates) == 4 + 2 * len(KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_the_new_package_passes_its_own_tests(kind, tmp_path):
    """Its tests as a user runs them (the plugin loaded as a module: installing it is CI's job)."""
    name = f"my_{kind}"
    subprocess.run([sys.executable, "-m", "mmbench", "new", kind, name, "--dir", str(tmp_path)], check=True,
                   capture_output=True)
    root = tmp_path / f"mmbench-{name}"
    env = {**os.environ, "MMBENCH_PLUGINS": f"mmbench,mmbench_{name}",
           "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
