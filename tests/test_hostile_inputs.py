"""Suites that are garbage or hostile: one line and exit 2, never a traceback or a write
outside the project."""

from __future__ import annotations

import pytest

MINIMAL = """
[suite]
name = {name}
seeds = {seeds}

[[datasets]]
name = "synthetic"
n_samples = 100
dims = [4, 4]

[[fusions]]
name = "early"
"""


@pytest.mark.parametrize("name", ["../../../x", "/tmp/x", "a/b", ".hidden", "", "..", "x y", "C:\\\\x"])
def test_a_suite_name_that_is_a_path_is_a_validation_error(write_suite, run_cli, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(MINIMAL.format(name=f'"{name}"', seeds="[0]"))
    for command in ("validate", "run", "leaderboard"):
        out = run_cli(command, suite)
        assert out.code == 2, (command, out.out)
        assert "[suite] name" in out.err and "is not a suite name" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite.toml"]  # nothing written anywhere


@pytest.mark.parametrize("name", ["quickstart", "lmic_cpu", "my-suite.v2", "2024_runs"])
def test_identifiers_stay_valid_suite_names(write_suite, run_cli, name):
    assert run_cli("validate", write_suite(MINIMAL.format(name=f'"{name}"', seeds="[0]"))).code == 0


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 4, "not a text file in UTF-8 (byte 128: invalid start byte)"),
    (b'[suite]\nname = "x"\nseeds = ' + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b'[suite]\nname = "x"\n[[datasets]]\nname = "synthetic"\nx = ' + b"[" * 900 + b"]" * 900, "nested too deeply"),
])
def test_a_garbage_suite_is_one_line_and_exit_2(tmp_path, run_cli, content, message):
    suite = tmp_path / "garbage.toml"
    suite.write_bytes(content)
    for command in ("validate", "run"):
        out = run_cli(command, suite)
        assert out.code == 2
        assert message in out.err and "Traceback" not in out.err
        assert len(out.err.strip().splitlines()) == 1


@pytest.mark.parametrize("seeds", ["[-1]", "[4294967296]", "[0, 18446744073709551615]"])
def test_seeds_numpy_cannot_take_fail_validation(write_suite, run_cli, seeds):
    out = run_cli("validate", write_suite(MINIMAL.format(name='"s"', seeds=seeds)))
    assert out.code == 2 and "[suite] seeds: seeds must be in [0, 4294967295]" in " ".join(out.err.split())


def test_the_largest_seed_runs(write_suite, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = write_suite(MINIMAL.format(name='"s"', seeds="[4294967295]").replace(
        '[[fusions]]\nname = "early"', '[train]\nepochs = 1\n\n[[fusions]]\nname = "early"\nhidden = 4'))
    out = run_cli("run", suite)
    assert out.code == 0, out.out + out.err
