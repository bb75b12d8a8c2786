"""The plugin contract is checked when plugins register, and every breach is named where a
plugin author looks: ``mmbench plugins``, ``mmbench plugins NAME``, a run's exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.errors import PluginDeprecationWarning, UnknownPluginError
from mmbench.registry import load_registry
from mmbench.testing import SAMPLE_SUITE

LEGACY_PACKAGE = Path(__file__).resolve().parent / "packages" / "mmbench-legacy-fit"

#: (kind, name) -> what its "broken" reason must name
BREACHES = {
    ("fusion", "misspelled"): "does not define build_model()",
    ("fusion", "rows_consumer"): "consumes must be one of 'embeddings', 'raw', got 'rows'",
    ("fusion", "string_flag"): "handles_missing must be one of False, True, got 'yes'",
    ("dataset", "no_load"): "does not define load()",
    ("alignment", "no_transform"): "does not define transform()",
    ("reporter", "no_write"): "does not define write()",
}


def test_each_contract_breach_is_found_at_registration_and_named(use_plugins):
    use_plugins("mmbench,fx_contract_breaches")

    registry = load_registry()

    broken = {(b.kind, b.name): b.reason for b in registry.broken}
    assert set(broken) == set(BREACHES)
    for key, fragment in BREACHES.items():
        assert fragment in broken[key], broken[key]
        assert "fx_contract_breaches." in broken[key]  # the class, to find it in the code
    assert registry.get("fusion", "fine").source.distribution == "fx_contract_breaches"  # siblings load
    with pytest.raises(UnknownPluginError, match=r"fusion 'misspelled' from fx_contract_breaches is broken: .*"
                                                 r"does not define build_model\(\)"):
        registry.get("fusion", "misspelled")


def test_plugins_table_names_broken_classes_and_packages_apart(use_plugins, run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    use_plugins("mmbench,fx_contract_breaches,fx_import_error")

    result = run_cli("plugins")

    assert result.code == 0
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.out.splitlines() if "broken" in line]
    misspelled = next(r for r in rows if "misspelled" in r)
    assert misspelled[:2] == ["fusion", "misspelled"] and "Misspelled does not define" in misspelled[-1]
    assert "build_model()" in result.out
    package = next(r for r in rows if "fx_import_error" in r)
    assert package[:2] == ["(package)", "fx_import_error"]  # a distribution, not a plugin kind


def test_plugins_name_shows_a_broken_class_and_mentions_failed_packages(use_plugins, run_cli):
    use_plugins("mmbench,fx_contract_breaches,fx_import_error")

    broken = run_cli("plugins", "misspelled")
    assert broken.code == 0
    assert "fusion 'misspelled'" in broken.out and "build_model()" in broken.out

    found = run_cli("plugins", "early")
    assert found.code == 0 and "package fx_import_error" in found.out and "failed to load" in found.out

    missing = run_cli("plugins", "someone_elses")
    assert missing.code == 2
    assert "failed to load, from fx_contract_breaches, fx_import_error" in missing.err


def test_a_name_registered_twice_is_flagged(use_plugins, run_cli):
    use_plugins("mmbench,fx_conflict_early")

    listing = run_cli("plugins")
    details = run_cli("plugins", "early")

    for result in (listing, details):
        assert result.code == 0
        assert "conflict: fusion 'early' is registered by" in result.out
        assert "fx_conflict_early" in result.out and "mmbench" in result.out




def test_a_reporter_that_fails_is_a_warning_and_exit_4(use_plugins, run_cli, write_suite, tmp_path):
    use_plugins("mmbench,fx_failing_reporter")
    suite = write_suite(SAMPLE_SUITE.format(out=tmp_path))

    result = run_cli("run", suite)

    assert result.code == 4, result.out + result.err
    assert "warning: reporter 'explodes' wrote nothing, the leaderboard is incomplete" in result.out
    assert "ValueError: cannot format this leaderboard" in result.out
    assert (tmp_path / "board" / "kit.json").exists()  # the other reporters still wrote
    assert run_cli("leaderboard", suite).code == 4


def test_a_reporter_broken_at_registration_makes_the_leaderboard_incomplete(use_plugins, run_cli, write_suite,
                                                                            tmp_path):
    use_plugins("mmbench,fx_contract_breaches")
    suite = write_suite(SAMPLE_SUITE.format(out=tmp_path))

    result = run_cli("run", suite)

    assert result.code == 4
    assert "reporter 'no_write' wrote nothing" in result.out


# --- the old fit signature keeps working ------------------------------------------------

@pytest.fixture
def legacy_package(monkeypatch):
    """The fixture package written to the old fit signature, importable as a plugin."""
    monkeypatch.syspath_prepend(str(LEGACY_PACKAGE / "src"))
    monkeypatch.setenv("MMBENCH_PLUGINS", "mmbench,mmbench_legacy_fit")
    yield
    import sys

    for name in [n for n in sys.modules if n.startswith("mmbench_legacy_fit")]:
        del sys.modules[name]


def test_old_fit_is_listed_as_deprecated_with_the_date(legacy_package, run_cli):
    from mmbench.fit_context import OLD_FIT_REMOVED

    with pytest.warns(PluginDeprecationWarning, match=r"LegacyConcat\.fit uses the old signature"):
        info = load_registry().get("fusion", "legacy_concat")
    assert info.deprecations and OLD_FIT_REMOVED in info.deprecations[0]
    assert "fit(self, train, val, config, ctx)" in info.deprecations[0]
    listing = json.loads(run_cli("plugins", "--json").out)
    notes = {p["name"]: p["deprecations"] for p in listing["plugins"]}
    assert notes["legacy_concat"] and notes["early"] == []
    assert OLD_FIT_REMOVED in (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()


def test_old_fit_plugins_run_their_suite_with_the_deprecation_warning(legacy_package, run_cli, monkeypatch,
                                                                      tmp_path):
    monkeypatch.chdir(tmp_path)

    with pytest.warns(PluginDeprecationWarning) as caught:
        result = run_cli("run", LEGACY_PACKAGE / "suite.toml")

    assert result.code == 0, result.out
    messages = " ".join(str(w.message) for w in caught)
    assert "LegacyConcat.fit uses the old signature" in messages
    assert "LegacyEncoderCount.fit uses the old signature" in messages
    results = {r["spec"]["fusion"]["name"]: r for r in
               (json.loads(p.read_text()) for p in (tmp_path / "build/legacy_fit/results").rglob("*.json"))}
    assert {name: r["status"] for name, r in results.items()} == {
        "legacy_concat": "ok", "legacy_encoder_count": "ok", "early": "ok"}
    # its fit override ran and saw every epoch through the old on_epoch callback
    assert results["legacy_concat"]["fit_info"]["epochs_seen"] == results["legacy_concat"]["metrics"]["epochs_run"]
    assert results["legacy_encoder_count"]["fit_info"]["encoders_given"] == []


@pytest.mark.slow
def test_the_old_fit_package_passes_its_own_tests(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MMBENCH_PLUGINS": "mmbench,mmbench_legacy_fit",
           "PYTHONPATH": os.pathsep.join([str(LEGACY_PACKAGE / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(LEGACY_PACKAGE / "tests")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
