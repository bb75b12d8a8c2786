"""Gap diagnostics: the numbers mean what the modality-gap paper says, and every run stores them."""

import json

import numpy as np
import pytest

from mmbench.cli import main
from mmbench.data import SplitData
from mmbench.gap import diagnostics


def data(image, text, masks=None):
    return SplitData(ids=np.arange(len(image)), features={"image": image, "text": text},
                     labels=np.zeros(len(image), dtype=int), task="binary", classes=("a", "b"),
                     masks=masks or {})


def test_identical_vectors_have_full_resultant_length_and_no_gap():
    v = np.tile([[3.0, 4.0, 0.0]], (10, 1))
    d = diagnostics(data(v, v))
    assert d["modalities"]["image"]["R"] == pytest.approx(1.0)
    assert d["pairs"]["image~text"] == {"gap_norm": pytest.approx(0.0), "mean_cosine": pytest.approx(1.0)}


def test_isotropic_vectors_have_small_resultant_length():
    rng = np.random.default_rng(0)
    d = diagnostics(data(rng.standard_normal((5000, 32)), rng.standard_normal((5000, 32))))
    assert d["modalities"]["image"]["R"] < 0.05
    assert d["pairs"]["image~text"]["mean_cosine"] == pytest.approx(0.0, abs=0.01)


def test_gap_norm_is_the_distance_between_the_normalised_means():
    image = np.array([[1.0, 0.0], [1.0, 0.0]])
    text = np.array([[0.0, 2.0], [0.0, 5.0]])
    d = diagnostics(data(image, text))
    assert d["pairs"]["image~text"]["gap_norm"] == pytest.approx(np.sqrt(2))
    assert d["modalities"]["text"]["variance"] == pytest.approx(0.0)


def test_missing_rows_are_left_out():
    image = np.array([[1.0, 0.0], [0.0, 1.0]])
    d = diagnostics(data(image, image, masks={"image": np.array([True, False])}))
    assert d["modalities"]["image"]["R"] == pytest.approx(1.0)
    assert d["pairs"]["image~text"]["mean_cosine"] == pytest.approx(1.0)  # only the sample with both


def test_unequal_dimensions_give_no_pair():
    d = diagnostics(data(np.ones((3, 2)), np.ones((3, 5))))
    assert d["pairs"] == {}


SUITE = """
[suite]
name = "g"
[[datasets]]
name = "synthetic"
n_samples = 300
dims = [8, 8]
cone = 0.6
gap = 0.8
[[alignments]]
name = "none"
[[fusions]]
name = "early"
train = { epochs = 2 }
"""


def test_every_run_stores_its_gap_before_and_after_alignment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.toml").write_text(SUITE)
    assert main(["run", "g.toml"]) == 0
    (path,) = (tmp_path / "results" / "g").glob("*.json")
    gap = json.loads(path.read_text())["gap"]
    assert gap["before"]["pairs"]["image~text"]["gap_norm"] > 0.5
    assert gap["after"] == gap["before"]  # the "none" alignment changes nothing


def test_gap_command_writes_numbers_and_a_pca_plot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.toml").write_text(SUITE)
    assert main(["gap", "g.toml", "--out", "gapdir"]) == 0
    (numbers,) = (tmp_path / "gapdir").glob("*.json")
    record = json.loads(numbers.read_text())
    assert record["labels"] == {"dataset": "synthetic(cone=0.6, dims=[8,8], gap=0.8, n_samples=300)",
                                "encoder": "-", "alignment": "none"}
    assert set(record) >= {"before", "after"}
    (plot,) = (tmp_path / "gapdir").glob("*.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_gap_command_describes_the_whole_dataset_by_default_or_the_split_asked_for(tmp_path, monkeypatch):
    """The modality-gap paper, Table 1: "Mean Resultant Length (R), quantifying the degree of
    embedding concentration" per dataset and backbone, R = ||1/N sum_i v_i|| (eq. 7) over
    the dataset's N embeddings; only the gap vector is "estimated ... over D_train" (eq. 6).
    So `mmbench gap` defaults to every sample; --split picks one (runs keep train's)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.toml").write_text(SUITE)
    records = {}
    for split in ("all", "train", "test"):
        argv = ["gap", "g.toml", "--out", f"gap_{split}"] + ([] if split == "all" else ["--split", split])
        assert main(argv) == 0
        (numbers,) = (tmp_path / f"gap_{split}").glob("*.json")
        records[split] = json.loads(numbers.read_text())
    assert records["all"]["split"] == "all" and records["all"]["n"] == 300
    assert records["train"]["n"] + records["test"]["n"] < 300 and records["test"]["n"] == 60
    r = {s: records[s]["before"]["modalities"]["image"]["R"] for s in records}
    assert len(set(r.values())) == 3  # three sets of samples, three means


def test_gap_replaces_only_its_own_files_and_checks_every_one_before_writing(tmp_path, monkeypatch, run_cli):
    """Its JSON says generated_by = "mmbench gap" and its PNG's Software text says so: a
    file of the user's at one of its names stops the command (exit 2, naming the file)
    before any file is written; its own files, those written before the mark included,
    are replaced."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.toml").write_text(SUITE)
    assert run_cli("gap", "g.toml", "--out", "gapdir").code == 0
    (numbers,) = (tmp_path / "gapdir").glob("*.json")
    (plot,) = (tmp_path / "gapdir").glob("*.png")
    assert json.loads(numbers.read_text())["generated_by"] == "mmbench gap"
    assert b"tEXtSoftware\x00mmbench gap" in plot.read_bytes()[:4096]

    # the user's picture at the plot's name (the last file written): the record is not rewritten either
    record = json.loads(numbers.read_text())
    numbers.write_text(json.dumps({**record, "n": -1}))
    Image.new("RGB", (4, 4)).save(plot)
    users_plot = plot.read_bytes()
    out = run_cli("gap", "g.toml", "--out", "gapdir")
    assert out.code == 2 and f"gapdir/{plot.name} exists and was not generated by mmbench" in " ".join(out.err.split())
    assert "--out" in out.err and "Traceback" not in out.err
    assert json.loads(numbers.read_text())["n"] == -1 and plot.read_bytes() == users_plot

    numbers.write_text("my notes\n")  # the user's text at the record's name
    out = run_cli("gap", "g.toml", "--out", "gapdir")
    assert out.code == 2 and f"gapdir/{numbers.name} exists and was not generated by mmbench" in " ".join(out.err.split())
    assert numbers.read_text() == "my notes\n"

    # files written before the mark: a record without generated_by, matplotlib's own Software text
    numbers.write_text(json.dumps(record | {"n": -1, "generated_by": None}))
    fig = plt.figure()
    fig.savefig(plot)
    plt.close(fig)
    assert run_cli("gap", "g.toml", "--out", "gapdir").code == 0
    assert json.loads(numbers.read_text()) == record
    assert b"tEXtSoftware\x00mmbench gap" in plot.read_bytes()[:4096]
