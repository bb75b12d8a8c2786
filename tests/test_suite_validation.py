"""Suite files: every mistake is found up front and located; valid suites expand as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbench.errors import SuiteError
from mmbench.params import Param
from mmbench.registry import load_registry
from mmbench.suite import load_suite

QUICKSTART = Path(__file__).resolve().parents[1] / "suites" / "quickstart.toml"

SUITE = """\
[suite]
name = "t"
seeds = [0]
"""
DATASET = """
[[datasets]]
name = "synthetic"
n_samples = 100
"""
LABELLED = DATASET + 'label = "d"\n'
EARLY = """
[[fusions]]
name = "early"
"""

#: id -> (suite text, fragments the error must show besides the file name)
BAD = {
    "unknown plugin": (
        SUITE + DATASET + '[[fusions]]\nname = "erly"\n',
        ['[[fusions]] #1 (name = "erly") name', "unknown fusion 'erly'; did you mean 'early'?"]),
    "unknown dataset": (
        SUITE + '[[datasets]]\nname = "synthtic"\n' + EARLY,
        ['[[datasets]] #1 (name = "synthtic") name', "did you mean 'synthetic'"]),
    "unknown parameter": (
        SUITE + DATASET + EARLY + "hiden = 32\n",
        ['[[fusions]] #1 (name = "early") hiden', "unknown parameter; did you mean 'hidden'?"]),
    "unknown train setting": (
        SUITE + DATASET + EARLY + "train = { lrr = 0.1 }\n",
        ['[[fusions]] #1 (name = "early") train.lrr', "unknown parameter; did you mean 'lr'?"]),
    "string for int": (
        SUITE + DATASET + EARLY + 'hidden = "32"\n',
        ['[[fusions]] #1 (name = "early") hidden', "expected an integer, got '32'"]),
    "string for int in [train]": (
        SUITE + '[train]\nepochs = "ten"\n' + DATASET + EARLY,
        ["[train] epochs", "expected an integer, got 'ten'"]),
    "above max": (
        SUITE + DATASET + EARLY + "dropout = 1.5\n",
        ['[[fusions]] #1 (name = "early") dropout', "must be <= 0.95, got 1.5"]),
    "below min": (
        SUITE + DATASET.replace("100", "2") + EARLY,
        ['[[datasets]] #1 (name = "synthetic") n_samples', "must be >= 8, got 2"]),
    "out of range in [split]": (
        SUITE + "[split]\nval = 1.5\n" + DATASET + EARLY,
        ["[split] val", "must be <= 0.9, got 1.5"]),
    "not a choice": (
        SUITE + DATASET + EARLY + "[report]\nprimary = 'auc'\n",
        ["[report] primary", "expected one of", "got 'auc'"]),
    "empty sweep": (
        SUITE + DATASET + EARLY + "hidden = []\n",
        ['[[fusions]] #1 (name = "early") hidden', "empty list"]),
    "unknown table": (
        SUITE + "[trian]\nepochs = 3\n" + DATASET + EARLY,
        ["[trian]: unknown table; did you mean 'train'?"]),
    "missing suite name": (
        '[suite]\nseeds = [0]\n' + DATASET + EARLY,
        ["[suite] name: required parameter missing"]),
    "no fusions": (
        SUITE + DATASET,
        ["[[fusions]]: the suite needs at least one [[fusions]] entry"]),
    "reference to a configuration not in the grid": (
        SUITE + LABELLED + EARLY + "[[report.reference]]\ndataset = 'd'\nconfig = '- / - / eraly'\n"
        "metric = 'auroc'\nvalue = 0.9\nsource = 'paper, Table 1'\n",
        ["[[report.reference]] #1 config", "no configuration '- / - / eraly'", "did you mean '- / - / early'?"]),
    "reference to an unknown dataset label": (
        SUITE + LABELLED + EARLY + "[[report.reference]]\ndataset = 'brset'\nconfig = '- / - / early'\n"
        "metric = 'auroc'\nvalue = 0.9\nsource = 'paper'\n",
        ["[[report.reference]] #1 dataset", "no dataset labelled 'brset'", "d"]),
    "reference without a source": (
        SUITE + LABELLED + EARLY + "[[report.reference]]\ndataset = 'd'\nconfig = '- / - / early'\n"
        "metric = 'auroc'\nvalue = 0.9\n",
        ["[[report.reference]] #1 source", "required parameter missing"]),
    "reference to an unknown metric": (
        SUITE + LABELLED + EARLY + "[[report.reference]]\ndataset = 'd'\nconfig = '- / - / early'\n"
        "metric = 'auc'\nvalue = 0.9\nsource = 'paper'\n",
        ["[[report.reference]] #1 metric", "expected one of"]),
    "two references for one metric": (
        SUITE + LABELLED + EARLY + 2 * ("[[report.reference]]\ndataset = 'd'\nconfig = '- / - / early'\n"
                                       "metric = 'f1'\nvalue = 0.9\nsource = 'paper'\n"),
        ["[[report.reference]] #2", "a second f1 for 'd' / '- / - / early'"]),
    "unknown executor kind": (
        SUITE + DATASET + EARLY + "[executor]\nkind = 'slurm'\n",
        ["[executor] kind", "expected one of", "got 'slurm'"]),
    "bad local cluster setting": (
        SUITE + DATASET + EARLY + "[executor]\nkind = 'dask'\nlocal_cluster = { n_wrkers = 2 }\n",
        ["[executor] local_cluster.n_wrkers", "did you mean 'n_workers'?"]),
    "seeds not integers": (
        SUITE.replace("[0]", '["a"]') + DATASET + EARLY,
        ["[suite] seeds", "expected a non-empty list of integers"]),
}


@pytest.mark.parametrize(("text", "fragments"), list(BAD.values()), ids=list(BAD))
def test_a_bad_suite_is_a_located_usage_error_without_traceback(write_suite, run_cli, text, fragments):
    path = write_suite(text)

    result = run_cli("validate", path)

    assert result.code == 2
    assert "Traceback" not in result.err + result.out
    assert f"{path}: {fragments[0]}" in result.err  # file, table and key
    for fragment in fragments[1:]:
        assert fragment in result.err


@pytest.mark.parametrize(("text", "fragments"), list(BAD.values()), ids=list(BAD))
def test_load_suite_locates_every_problem_in_the_file(write_suite, text, fragments):
    path = write_suite(text)

    with pytest.raises(SuiteError) as excinfo:
        load_suite(path, load_registry())

    assert excinfo.value.problems
    assert all(where.startswith(f"{path}: ") for where, _ in excinfo.value.problems)


def test_a_fusion_that_cannot_take_the_datasets_task_is_reported(use_plugins, write_suite, run_cli):
    use_plugins("mmbench,fx_good")
    path = write_suite(SUITE + """
        [[datasets]]
        name = "synthetic"
        label = "seven_classes"
        task = "multiclass"
        n_classes = 7

        [[fusions]]
        name = "binary_only"
    """.replace("        ", ""))

    result = run_cli("validate", path)

    assert result.code == 2
    assert f'{path}: [[fusions]] #1 (name = "binary_only")' in result.err
    assert "cannot take dataset 'seven_classes': its task is multiclass" in result.err
    assert "supports binary" in result.err
    assert "Traceback" not in result.err


def test_a_task_kind_mismatch_is_reported_once_for_a_swept_fusion(use_plugins, write_suite):
    use_plugins("mmbench,fx_good")
    path = write_suite(SUITE + '[[datasets]]\nname = "synthetic"\ntask = "multiclass"\nn_classes = 3\n'
                       + '[[fusions]]\nname = "binary_only"\ndepth = [1, 2]\n')

    with pytest.raises(SuiteError) as excinfo:
        load_suite(path, load_registry())

    assert len(excinfo.value.problems) == 1
    assert "its task is multiclass" in excinfo.value.problems[0][1]


def test_a_missing_data_root_is_reported_before_anything_runs(use_plugins, write_suite, run_cli, tmp_path):
    use_plugins("mmbench,fx_good")
    missing = tmp_path / "no_such_folder"
    path = write_suite(SUITE + f'[[datasets]]\nname = "folder_data"\nroot = "{missing}"\n'
                       + '[[fusions]]\nname = "binary_only"\n')

    result = run_cli("validate", path)

    assert result.code == 2
    assert f'{path}: [[datasets]] #1 (name = "folder_data") root' in result.err
    assert f"'{missing}' does not exist" in result.err
    assert "Traceback" not in result.err

    missing.mkdir()
    assert run_cli("validate", path).code == 0


def test_a_name_registered_twice_is_reported_in_the_suite(use_plugins, write_suite, run_cli):
    use_plugins("mmbench,fx_conflict_early")
    path = write_suite(SUITE + DATASET + EARLY)

    result = run_cli("validate", path)

    assert result.code == 2
    assert f'{path}: [[fusions]] #1 (name = "early") name' in result.err
    assert "fusion 'early' is registered by both mmbench" in result.err
    assert "fx_conflict_early" in result.err


def test_a_plugins_own_cross_parameter_check_runs_at_validation(write_suite, run_cli):
    path = write_suite(SUITE + DATASET + "dims = [8]\n" + EARLY)

    result = run_cli("validate", path)

    assert result.code == 2
    assert f"{path}: [[datasets]]" in result.err
    assert "dims needs one value per modality" in result.err
    assert "Traceback" not in result.err


def test_two_entries_with_one_label_are_rejected(write_suite, run_cli):
    path = write_suite(SUITE + DATASET + EARLY + EARLY)

    result = run_cli("validate", path)

    assert result.code == 2
    assert "[[fusions]]: 2 entries resolve to the same configuration 'early'" in result.err


def test_invalid_toml_names_the_file_and_the_line(write_suite, run_cli):
    path = write_suite(SUITE + DATASET + "[[fusions]]\nname = early\n")

    result = run_cli("validate", path)

    assert result.code == 2
    assert f"{path}: not valid TOML" in result.err
    assert "line 9" in result.err
    assert "Traceback" not in result.err


def test_a_missing_suite_file_is_a_usage_error(tmp_path, run_cli):
    result = run_cli("validate", tmp_path / "nope.toml")

    assert result.code == 2
    assert f"{tmp_path / 'nope.toml'}: no such suite file" in result.err


def test_every_problem_is_reported_at_once(write_suite, run_cli):
    path = write_suite(SUITE + "[trian]\nepochs = 3\n" + DATASET.replace("100", "2")
                       + '[[fusions]]\nname = "erly"\n' + EARLY + "hiden = 32\n")

    result = run_cli("validate", path)

    assert result.code == 2
    assert "4 problems in the suite" in result.err
    for fragment in ("[trian]: unknown table", "n_samples: must be >= 8", "did you mean 'early'?",
                     "hiden: unknown parameter"):
        assert fragment in result.err
    with pytest.raises(SuiteError) as excinfo:
        load_suite(path, load_registry())
    assert len(excinfo.value.problems) == 4


def test_debug_shows_the_traceback(write_suite, run_cli):
    path = write_suite(SUITE + DATASET + '[[fusions]]\nname = "erly"\n')

    with pytest.raises(SuiteError, match="did you mean 'early'"):
        run_cli("--debug", "validate", path)


def test_quickstart_validates(run_cli):
    result = run_cli("validate", QUICKSTART)

    assert result.code == 0
    assert "suite 'quickstart', 36 runs" in result.out  # 4 datasets x 3 fusions x 3 seeds
    assert result.err == ""


def test_a_list_for_a_scalar_parameter_is_a_sweep(write_suite):
    path = write_suite(SUITE.replace("[0]", "[0, 1]") + DATASET + EARLY + "hidden = [32, 64]\n"
                       + EARLY + 'label = "wide"\nhidden = 256\ndropout = [0.1, 0.5]\n')

    suite = load_suite(path, load_registry())

    assert [(f.label, f.params) for f in suite.fusions] == [
        ("early(hidden=32)", {"hidden": 32, "dropout": 0.0}),
        ("early(hidden=64)", {"hidden": 64, "dropout": 0.0}),
        ("wide(dropout=0.1)", {"hidden": 256, "dropout": 0.1}),
        ("wide(dropout=0.5)", {"hidden": 256, "dropout": 0.5}),
    ]
    runs = suite.runs()
    assert len(runs) == 4 * 2  # configurations x seeds
    assert len({r.run_id for r in runs}) == len(runs)


def test_a_list_in_the_train_table_is_a_sweep(write_suite):
    path = write_suite(SUITE + DATASET + '[[fusions]]\nname = "linear_probe"\ntrain = { lr = [0.1, 0.01] }\n')

    suite = load_suite(path, load_registry())

    assert [(f.label, f.train["lr"]) for f in suite.fusions] == [
        ("linear_probe(lr=0.1)", 0.1), ("linear_probe(lr=0.01)", 0.01)]


def test_a_list_valued_parameter_takes_a_list_and_sweeps_a_list_of_lists(write_suite):
    path = write_suite(SUITE + DATASET + "dims = [[8, 8], [16, 16]]\n" + EARLY
                       + DATASET.replace("100", "50") + "dims = [8, 8]\n")

    suite = load_suite(path, load_registry())

    assert [c.params["dims"] for c, _, _ in suite.datasets] == [[8, 8], [16, 16], [8, 8]]


def test_dry_run_prints_the_grid_and_writes_nothing(write_suite, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_suite(SUITE.replace("[0]", "[0, 1]") + DATASET + EARLY + "hidden = [32, 64]\n")
    runs = load_suite(path, load_registry()).runs()

    result = run_cli("run", path, "--dry-run")

    assert result.code == 0
    assert "early(hidden=32)" in result.out and "early(hidden=64)" in result.out
    for spec in runs:
        assert spec.run_id in result.out
    assert "4 runs: 4 to run, 0 already done" in result.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite.toml"]  # no results, no leaderboard


def _run_ids(write_suite, text: str, name: str = "suite.toml") -> list[str]:
    return [r.run_id for r in load_suite(write_suite(text, name), load_registry()).runs()]


def test_run_ids_are_stable_across_loads_and_files(write_suite):
    text = SUITE + DATASET + EARLY + "hidden = 32\n"

    first = _run_ids(write_suite, text)

    assert first == _run_ids(write_suite, text)
    assert first == _run_ids(write_suite, text, "copy.toml")
    assert first == _run_ids(write_suite, text.replace('name = "t"', 'name = "renamed"'))


@pytest.mark.parametrize(("old", "new"), [
    ("hidden = 32", "hidden = 64"),                   # a fusion parameter
    ("n_samples = 100", "n_samples = 101"),           # a dataset parameter
    ("seeds = [0]", "seeds = [1]"),                   # the seed
    ("dropout = 0.0", 'dropout = 0.0\ntrain = { lr = 0.5 }'),  # a training setting of the entry
    ("[suite]", "[train]\nepochs = 3\n\n[suite]"),    # the suite's training settings
    ("[suite]", "[split]\ntest = 0.3\n\n[suite]"),    # the split
])
def test_run_ids_change_when_anything_that_changes_numbers_changes(write_suite, old, new):
    text = SUITE + DATASET + EARLY + "hidden = 32\ndropout = 0.0\n"
    assert old in text

    assert _run_ids(write_suite, text) != _run_ids(write_suite, text.replace(old, new))


def test_run_ids_do_not_change_with_labels(write_suite):
    text = SUITE + DATASET + EARLY + "hidden = 32\n"
    relabelled = text.replace('n_samples = 100', 'n_samples = 100\nlabel = "small"') + 'label = "mine"\n'

    suite = load_suite(write_suite(relabelled, "relabelled.toml"), load_registry())

    assert [r.run_id for r in suite.runs()] == _run_ids(write_suite, text)
    assert suite.runs()[0].dataset.label == "small" and suite.runs()[0].fusion.label == "mine"


def test_train_precedence_fusion_defaults_then_suite_then_entry(write_suite):
    path = write_suite(SUITE + "[train]\nepochs = 5\nlr = 0.5\n" + DATASET
                       + '[[fusions]]\nname = "linear_probe"\ntrain = { lr = 0.01 }\n'
                       + '[[fusions]]\nname = "linear_probe"\nlabel = "suite_lr"\n' + EARLY)

    entry, suite_lr, early = [r.fusion for r in load_suite(path, load_registry()).runs()]

    # linear_probe's own protocol (train_defaults), where neither the suite nor the entry says
    assert entry.train["optimizer"] == "sgd" and entry.train["patience"] == 10
    assert entry.train["epochs"] == 5   # the suite's [train] beats train_defaults' 2000
    assert entry.train["lr"] == 0.01    # the entry's train table beats the suite's 0.5
    assert entry.train["batch_size"] == 64  # mmbench's default: nobody set it
    assert suite_lr.train["lr"] == 0.5 and suite_lr.train["optimizer"] == "sgd"
    # a fusion without train_defaults gets mmbench's defaults under the suite's settings
    assert early.train["optimizer"] == "adamw"
    assert (early.train["epochs"], early.train["lr"]) == (5, 0.5)


def test_a_plugin_whose_default_breaks_its_own_param_is_reported_broken(use_plugins):
    use_plugins("mmbench,fx_edge_cases")
    registry = load_registry()
    (broken,) = registry.broken
    assert (broken.kind, broken.name) == ("fusion", "bad_default")
    assert "parameter 'hidden': default expected an integer" in broken.reason
    assert "default_root" in registry.names("dataset")  # the module's other hooks still load


def test_params_reject_min_max_on_non_numbers_and_must_exist_on_non_paths():
    with pytest.raises(TypeError, match="min / max apply to int and float"):
        Param("x", list, [1], "a list", min=1)
    with pytest.raises(TypeError, match="must_exist applies to Path"):
        Param("x", str, "a", "a string", must_exist=True)


def test_a_missing_default_data_root_is_reported_expanded(use_plugins, write_suite, run_cli):
    use_plugins("mmbench,fx_edge_cases")
    path = write_suite(SUITE + '[[datasets]]\nname = "default_root"\n' + EARLY)
    result = run_cli("validate", path)
    assert result.code == 2
    assert f"root: default '{Path.home()}/no-such-mmbench-data' does not exist" in result.err


def test_a_dataset_failing_while_preparing_is_a_located_problem(use_plugins, write_suite, run_cli):
    use_plugins("mmbench,fx_edge_cases")
    path = write_suite(SUITE + '[[datasets]]\nname = "fails_to_prepare"\n' + EARLY)
    result = run_cli("validate", path)
    assert result.code == 2
    assert '[[datasets]] #1 (name = "fails_to_prepare")' in result.err
    assert "ValueError: cannot read the index file" in result.err and "report this to fx_edge_cases" in result.err
    assert "Traceback" not in result.err


def test_an_encoder_without_modalities_must_be_given_one(use_plugins, write_suite, run_cli):
    use_plugins("mmbench,fx_edge_cases")
    path = write_suite(SUITE + DATASET + '[[encoders]]\nname = "anything"\n' + EARLY)
    result = run_cli("validate", path)
    assert result.code == 2
    assert 'declares no modalities; name the one it should encode, e.g. text = "anything"' in result.err
    per_modality = write_suite(SUITE + DATASET + '[[encoders]]\ntext = { name = "anything", label = "mine" }\n'
                               + EARLY, name="ok.toml")
    suite = load_suite(per_modality, load_registry())
    assert suite.encoders[0]["text"].label == "mine"


def test_a_label_beside_per_modality_encoders_is_pointed_inside(use_plugins, write_suite, run_cli):
    use_plugins("mmbench,fx_edge_cases")
    path = write_suite(SUITE + DATASET + '[[encoders]]\ntext = "anything"\nlabel = "mine"\n' + EARLY)
    result = run_cli("validate", path)
    assert result.code == 2
    assert "put each label in its table" in result.err
    assert "unknown encoder" not in result.err


def test_references_and_executor_settings_are_read_and_change_no_run_id(write_suite):
    plain = load_suite(write_suite(SUITE + LABELLED + EARLY, "a.toml"), load_registry())
    path = write_suite(SUITE + LABELLED + EARLY + """
[executor]
kind = "dask"
local_cluster = { n_workers = 2 }

[[report.reference]]
dataset = "d"
config = "- / - / early"
metric = "f1"
value = 0.886
source = "Restrepo et al. 2024, Table 1"
""", "b.toml")

    suite = load_suite(path, load_registry())

    assert suite.report["reference"] == [{"dataset": "d", "config": "- / - / early", "metric": "f1",
                                          "value": 0.886, "source": "Restrepo et al. 2024, Table 1"}]
    assert suite.executor == {"kind": "dask", "address": "", "retries": 2, "local_cluster": {"n_workers": 2,
                                                                              "threads_per_worker": 1}}
    assert [r.run_id for r in suite.runs()] == [r.run_id for r in plain.runs()]


def test_a_clean_point_of_a_robustness_sweep_runs_once_whatever_the_other_settings(write_suite):
    path = write_suite(SUITE + LABELLED + EARLY + """
[robustness]
missing_rate = [0.0, 0.5]
missing_modality = ["image", "text"]
""")

    suite = load_suite(path, load_registry())

    rates = [(r["missing_rate"], r["missing_modality"]) for r in suite.robustness]
    assert rates == [(0.0, "random"), (0.5, "image"), (0.5, "text")]
    assert len(suite.runs()) == 3


SCOPED = SUITE + """
[[datasets]]
name = "synthetic_raw"
label = "d"
n_samples = 40
[[encoders]]
name = "tfidf_svd"
label = "words"
[[encoders]]
name = "tfidf_svd"
label = "more_words"
ngram_max = 2
[[alignments]]
name = "none"
[[alignments]]
name = "gap_shift"
label = "shift"
lambda = [0.5, 1.0]
[[fusions]]
# the dataset's image and tabular items have no encoder: text-only fusions
name = "unimodal"
modality = "text"
label = "early"
[[fusions]]
name = "unimodal"
modality = "text"
label = "late_joint"
hidden = 65
encoders = ["words"]
alignments = ["none"]
[[fusions]]
name = "unimodal"
modality = "text"
label = "linear_probe"
hidden = 66
alignments = ["shift"]
"""


def test_a_fusion_entry_can_be_tied_to_encoder_and_alignment_entries(write_suite):
    path = write_suite(SCOPED)

    suite = load_suite(path, load_registry())

    combos = {(s.labels()["encoder"], s.labels()["alignment"], s.labels()["fusion"]) for s in suite.runs()}
    assert {c for c in combos if c[2] == "late_joint"} == {("words", "none", "late_joint")}
    assert {c[1] for c in combos if c[2] == "linear_probe"} == {"shift(lambda=0.5)", "shift(lambda=1)"}
    assert len([c for c in combos if c[2] == "early"]) == 2 * 3  # unscoped: every encoder x alignment


def test_a_scope_naming_no_entry_is_a_located_error(write_suite, run_cli):
    result = run_cli("validate", write_suite(SCOPED.replace('encoders = ["words"]', 'encoders = ["wrods"]')))

    assert result.code == 2
    assert '[[fusions]] (label "late_joint") encoders' in result.err
    assert "no encoder entry labelled 'wrods'; did you mean 'words'?" in result.err


def test_a_fusion_entry_can_be_tied_to_datasets(write_suite, run_cli):
    other = LABELLED.replace('label = "d"', 'label = "other"').replace("100", "120")
    text = SUITE + LABELLED + other + EARLY + """
[[fusions]]
name = "late_joint"
datasets = ["other"]
"""
    suite = load_suite(write_suite(text), load_registry())

    pairs = sorted((s.labels()["dataset"], s.labels()["fusion"]) for s in suite.runs())
    assert pairs == [("d", "early"), ("other", "early"), ("other", "late_joint")]
    typo = run_cli("validate", write_suite(text.replace('["other"]', '["otehr"]'), "typo.toml"))
    assert typo.code == 2 and "no dataset entry labelled 'otehr'; did you mean 'other'?" in typo.err


def test_a_suite_naming_a_renamed_metric_still_reads_with_a_deprecation_warning(write_suite):
    """``infer_s_per_epoch`` is now ``infer_s_test_pass`` (one pass over the test split):
    a suite using the old name keeps working, told to write the new one."""
    path = write_suite(SUITE + LABELLED + EARLY + '[report]\nprimary = "auroc"\n'
                       'columns = ["auroc", "infer_s_per_epoch"]\n'
                       '[[report.reference]]\ndataset = "d"\nconfig = "- / - / early"\n'
                       'metric = "infer_s_per_epoch"\nvalue = 0.28\nsource = "Restrepo et al. 2024, Table 3"\n')
    with pytest.warns(DeprecationWarning, match="renamed 'infer_s_test_pass'"):
        suite = load_suite(path, load_registry())
    assert suite.report["columns"] == ["auroc", "infer_s_test_pass"]
    assert suite.report["reference"][0]["metric"] == "infer_s_test_pass"
