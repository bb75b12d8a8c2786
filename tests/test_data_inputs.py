"""Inputs that are wrong in ways a loader must name: images edited in place (the
fingerprint), truncated images, badly encoded tables, tables validate can read."""

from __future__ import annotations

import os
from pathlib import Path

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
