"""Inputs that are wrong in ways a loader must name: images edited in place (the
fingerprint), truncated images, badly encoded tables, tables validate can read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures_tables import build_table
from mmbench_datasets.table import Table
from support import make

FULL = {"task": "binary", "split_column": "split", "group_column": "patient", "image_column": "img",
        "text_columns": ["title", "body"], "tabular_columns": ["age", "sex"]}


def edit_in_place(image: Path, *, keep_time: bool) -> None:
    """New bytes of the same size; the modification time moves on unless ``keep_time``."""
    before = image.stat()
    data = bytearray(image.read_bytes())
    data[-20] ^= 0xFF
    image.write_bytes(bytes(data))
    assert image.stat().st_size == before.st_size
    later = before.st_mtime_ns + (0 if keep_time else 2_000_000_000)
    os.utime(image, ns=(before.st_atime_ns, later))


def test_an_image_edited_in_place_with_its_size_kept_is_a_new_fingerprint(tmp_path):
    dataset = make(Table, path=str(build_table(tmp_path)), **FULL)
    before = dataset.fingerprint()
    edit_in_place(tmp_path / "pics" / "005.png", keep_time=False)
    assert dataset.fingerprint() != before


def test_content_fingerprints_see_what_times_cannot_and_ignore_a_touch(tmp_path):
    path = build_table(tmp_path)
    by_stat = make(Table, path=str(path), **FULL)
    by_content = make(Table, path=str(path), **FULL, fingerprint="content")
    stat_before, content_before = by_stat.fingerprint(), by_content.fingerprint()
    edit_in_place(tmp_path / "pics" / "005.png", keep_time=True)  # same name, size and time
    assert by_stat.fingerprint() == stat_before  # the documented limit of the fast default
    changed = by_content.fingerprint()
    assert changed != content_before
    os.utime(tmp_path / "pics" / "007.png")  # touched, same bytes
    assert by_content.fingerprint() == changed and by_stat.fingerprint() != stat_before


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_image_is_named_at_load_and_skip_leaves_it_out(tmp_path):
    import pytest

    from mmbench.errors import UserError

    path = build_table(tmp_path)
    truncate(tmp_path / "pics" / "005.png")
    with pytest.raises(UserError, match=r"sample 005: image file '.*pics/005.png' is truncated"):
        make(Table, path=str(path), **FULL).load()
    table = make(Table, path=str(path), **FULL, on_bad_sample="skip").load()
    assert "005" not in table.ids and "truncated" in table.skipped["005"]


def test_an_image_that_does_not_decode_names_its_file(tmp_path):
    import pytest
    from fixtures_tables import image
    from mmbench_encoders.batching import open_image
    from mmbench_encoders.image import ColorHistogram

    from mmbench.data import DataError

    broken = truncate(image(tmp_path / "cut.jpg", seed=3, size=64))
    with pytest.raises(DataError, match=r"image file '.*cut.jpg' cannot be decoded \(OSError: "):
        make(ColorHistogram).encode("image", [str(broken)])
    with pytest.raises(DataError, match="cut.jpg"):
        open_image(str(broken))


def test_a_table_with_a_byte_that_is_not_utf8_stops_naming_line_and_encoding(tmp_path):
    import pytest

    from mmbench.errors import UserError

    path = build_table(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"Visit 3", "Visit 3 Müller".encode("utf-8"))
    lines[7] = lines[7].replace(b"Visit 6", "Visit 6 caf\xe9".encode("latin-1"))  # one cp1252 byte
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(UserError, match=r"samples.csv: line 8, column \d+: byte 0xe9 is not UTF-8.*encoding"):
        make(Table, path=str(path), **FULL).load()
    path.write_bytes(b"\n".join(lines).replace("Müller".encode("utf-8"), "Müller".encode("cp1252")))
    table = make(Table, path=str(path), **FULL, encoding="cp1252").load()
    assert "Visit 3 Müller" in table.modalities["text"][3] and "Visit 6 café" in table.modalities["text"][6]


@pytest.fixture
def table_suite(tmp_path, write_suite):
    def write(rows=None, **extra) -> Path:
        build_table(tmp_path / "data", rows)
        settings = "\n".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items())
        return write_suite(f"""
            [suite]
            name = "table_check"
            seeds = [0]
            threads = 1

            [[datasets]]
            name = "table"
            path = "{tmp_path / 'data' / 'samples.csv'}"
            task = "binary"
            split_column = "split"
            tabular_columns = ["age"]
            {settings}

            [[encoders]]
            tabular = "tabular"

            [[fusions]]
            name = "early"
            train = {{ epochs = 2, batch_size = 8 }}
            """)
    return write


def test_validate_reads_the_tables_header_and_rows(table_suite, run_cli):
    from fixtures_tables import table_rows

    out = run_cli("validate", table_suite(text_columns=["title", "comments"]))
    assert out.code == 2 and "no column 'comments' (text_columns)" in " ".join(out.err.split())
    rows = [{k: v for k, v in row.items()} for row in table_rows()]
    suite = table_suite()
    (suite.parent / "data" / "samples.csv").write_text(",".join(rows[0]) + "\n")  # a header, no rows
    out = run_cli("validate", suite)
    assert out.code == 2 and "the table has a header but no rows" in " ".join(out.err.split())


def test_a_test_split_of_one_class_is_warned_about(table_suite, run_cli, tmp_path, monkeypatch):
    import json

    from fixtures_tables import table_rows

    monkeypatch.chdir(tmp_path)
    rows = table_rows()
    for row in rows:
        if row["split"] == "test":
            row["label"] = "no"
    suite = table_suite(rows, classes=["no", "yes"])
    out = run_cli("run", suite)
    assert out.code == 0, out.err
    warning = "the test split holds one class only ('no', 4 samples, of 2 classes): accuracy is trivial"
    assert warning in " ".join((out.out + out.err).split())  # on the console, and as a leaderboard note
    again = run_cli("leaderboard", suite)  # through the results index, as a rebuild reads them
    assert warning in " ".join(again.out.split())
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "table_check").glob("*.json")]
    assert result["metrics"]["auroc"] is None
    assert result["warnings"][0].startswith("the test split holds one class only ('no'")


def _image_datasets() -> dict:
    """Every loader with an image modality -> how to build a tiny copy under a folder and
    the parameters that load it (the loader tests' own fixture builders)."""
    import fixtures_brset as brset
    import fixtures_ham10000 as ham
    from fixtures_mimic import build_mimic_cxr, build_mimic_mortality
    from fixtures_social import build_fakeddit, build_mvsa_multiple, build_mvsa_single
    from fixtures_tables import build_pairdx, build_satellitebench
    from fixtures_vqa import make_coco_qa, make_daquar, make_recipes5k
    from mmbench_datasets import (Brset, CocoQa, Daquar, Fakeddit, Ham10000, Mbrset, MimicCxr, MimicMortality,
                                  MvsaMultiple, MvsaSingle, PairDx, Recipes5k, SatelliteBench)

    def rooted(cls, build):
        return lambda root: (cls, {"root": str(build(root) or root)})

    def mortality(root):
        build_mimic_mortality(root / "ihm")
        build_mimic_cxr(root / "cxr")
        return MimicMortality, {"root": str(root / "ihm"), "cxr_root": str(root / "cxr")}

    return {
        "table": lambda root: (Table, {"path": str(build_table(root)), **FULL}),
        "pairdx": rooted(PairDx, lambda root: build_pairdx(root, "single")),
        "brset": rooted(Brset, brset.write_brset),
        "mbrset": rooted(Mbrset, brset.write_mbrset),
        "ham10000": rooted(Ham10000, lambda root: ham.build(root) and None),
        "mvsa_single": rooted(MvsaSingle, lambda root: build_mvsa_single(root) and None),
        "mvsa_multiple": rooted(MvsaMultiple, lambda root: build_mvsa_multiple(root) and None),
        "satellitebench": rooted(SatelliteBench, lambda root: build_satellitebench(root, "flat")),
        "mimic_cxr": rooted(MimicCxr, lambda root: build_mimic_cxr(root) and None),
        "mimic_mortality": mortality,
        "fakeddit": rooted(Fakeddit, build_fakeddit),
        "recipes5k": rooted(Recipes5k, make_recipes5k),
        "coco_qa": rooted(CocoQa, make_coco_qa),
        "daquar": rooted(Daquar, make_daquar),
    }


@pytest.mark.parametrize("name", sorted(_image_datasets()))
def test_every_image_dataset_names_a_truncated_image_at_load_or_skips_it(tmp_path, name):
    """A copy cut short stops the load naming the sample and the file (not mid-run in an
    encoder); "skip" leaves out exactly the samples showing that image and counts them."""
    from mmbench.errors import UserError

    cls, params = _image_datasets()[name](tmp_path / name)
    clean = make(cls, **params).load()
    images, present = clean.modalities["image"], clean.masks.get("image")
    first = next(k for k, p in enumerate(images) if p is not None and (present is None or present[k]))
    cut = truncate(Path(images[first]))
    showing = {str(i) for i, p in zip(clean.ids, images) if p is not None and Path(p) == cut}
    with pytest.raises(UserError) as error:
        make(cls, **params).load()
    message = " ".join(str(error.value).split())
    assert f"sample {clean.ids[first]}: image file {str(cut)!r} is truncated" in message
    assert 'on_bad_sample = "skip"' in message
    table = make(cls, **params, on_bad_sample="skip").load()
    assert set(table.ids) == set(clean.ids) - showing
    assert set(table.skipped) == set(clean.skipped) | showing
    assert all("truncated" in table.skipped[i] for i in showing)


def with_byte(path: Path, line: int, byte: bytes = b"\xe9") -> Path:
    """``byte`` (é in Windows-1252; never valid UTF-8 alone) at the end of ``line`` (from 1)."""
    lines = path.read_bytes().split(b"\n")
    ending = b"\r" if lines[line - 1].endswith(b"\r") else b""
    lines[line - 1] = lines[line - 1].removesuffix(b"\r") + byte + ending
    path.write_bytes(b"\n".join(lines))
    return path


#: the UTF-8 table each loader of a published layout reads, relative to the folder its fixture is built in
PUBLISHED_TABLES = {"brset": "labels.csv", "mbrset": "labels_mbrset.csv", "ham10000": "HAM10000_metadata.csv",
                    "fakeddit": "multimodal_only_samples/multimodal_train.tsv",
                    "mimic_cxr": "mimic-cxr-2.0.0-chexpert.csv",
                    "mimic_mortality": "ihm/in-hospital-mortality/train/listfile.csv",
                    "satellitebench": "metadata.csv"}


@pytest.mark.parametrize("name", sorted(PUBLISHED_TABLES))
def test_a_published_table_with_a_byte_that_is_not_utf8_is_named_with_its_line(tmp_path, name):
    """The loaders of published layouts read their tables as UTF-8 and have no encoding
    parameter: the error names the file and line (not wrapped in 'cannot read'), and says
    to convert the copy back rather than offering a parameter the dataset lacks."""
    from mmbench.errors import UserError

    cls, params = _image_datasets()[name](tmp_path / name)
    path = with_byte(tmp_path / name / PUBLISHED_TABLES[name], 3)
    with pytest.raises(UserError) as error:
        make(cls, **params).load()
    message = " ".join(str(error.value).split())
    assert message.startswith(f"{path}: line 3, column ") and "byte 0xe9 is not UTF-8" in message
    assert "converted back (iconv" in message and "encoding =" not in message


def test_pairdx_and_embeddings_table_read_a_users_table_in_its_encoding(tmp_path):
    """Both read a table the user points at (pairdx: any csv; embeddings_table: its own
    export or the authors'): UTF-8 by default, a stray byte named with its line and the
    encoding parameter that reads it."""
    import pandas as pd
    from fixtures_tables import build_pairdx
    from mmbench_datasets import EmbeddingsTable, PairDx

    from mmbench.errors import UserError

    root = build_pairdx(tmp_path / "pairdx", "single")
    table = root / "pairdx.csv"
    table.write_bytes(table.read_bytes().replace(b"chart findings in case 0", "chart findings in café 0".encode("cp1252"), 1))
    vectors = pd.DataFrame({"id": ["a", "b", "c", "d"], "label": ["não", "sim", "não", "sim"],
                            "image_0": [0.1, 0.2, 0.3, 0.4], "text_0": [1.0, 2.0, 3.0, 4.0]})
    vectors.to_csv(tmp_path / "vectors.csv", index=False, encoding="cp1252")
    for cls, params, line, byte in ((PairDx, {"root": str(root)}, 2, "0xe9"),
                                    (EmbeddingsTable, {"path": str(tmp_path / "vectors.csv")}, 2, "0xe3")):
        with pytest.raises(UserError) as error:
            make(cls, **params).load()
        message = " ".join(str(error.value).split())
        assert f": line {line}, column " in message and f"byte {byte} is not UTF-8" in message
        assert 'encoding = "cp1252"' in message
    captions = make(PairDx, root=str(root), encoding="cp1252").load().modalities["text"]
    assert captions[0] == "Figure 1: chart findings in café 0."
    assert make(EmbeddingsTable, path=str(tmp_path / "vectors.csv"), encoding="cp1252").load().classes == ("não", "sim")
