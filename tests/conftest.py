"""Shared fixtures: a hermetic environment, suite files, the CLI, fixture plugins."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: plugin packages with their own tests (run through tests/test_plugin_contract.py, not collected here)
collect_ignore = ["packages"]

PLUGIN_FIXTURES = Path(__file__).resolve().parent / "plugin_fixtures"
#: plugins used by end-to-end runs: misbehaving fusions, a toy encoder, a raw-text dataset
RUN_FIXTURES = Path(__file__).resolve().parent / "run_fixtures"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No downloads, and only the plugins a test asks for (not the caller's shell settings)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMBENCH_PLUGINS", raising=False)
    monkeypatch.delenv("MMBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)


@pytest.fixture(autouse=True)
def _private_embedding_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test gets its own empty embedding cache, never the user's ~/.cache/mmbench."""
    root = tmp_path_factory.mktemp("embedding-cache")
    monkeypatch.setenv("MMBENCH_CACHE", str(root))
    return root


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and do not fight other processes for 2 cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_suite(tmp_path: Path) -> Callable[..., Path]:
    """``write_suite(text, name="suite.toml")``: write a (dedented) suite into tmp_path."""

    def write(text: str, name: str = "suite.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``run_cli("validate", path)``: run ``mmbench.cli.main`` and capture exit code and output."""
    from mmbench.cli import main

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def use_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Makes tests/plugin_fixtures and tests/run_fixtures importable;
    ``use_plugins("mmbench,fx_good")`` sets MMBENCH_PLUGINS."""
    for folder in (PLUGIN_FIXTURES, RUN_FIXTURES):
        monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)

    def use(allow_list: str) -> None:
        monkeypatch.setenv("MMBENCH_PLUGINS", allow_list)

    yield use
    for name in set(sys.modules) - before:  # the next test imports its fixture plugins afresh
        if (getattr(sys.modules[name], "__file__", None) or "").startswith((str(PLUGIN_FIXTURES), str(RUN_FIXTURES))):
            del sys.modules[name]
