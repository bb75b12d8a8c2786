"""Item digests: what decides whether the sample store holds a sample's row."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from mmbench.item_identity import DIGEST_CHARS, addresses, item_digests


def test_a_text_is_its_characters():
    a, b, c = item_digests(["a dog", "a dog", "a cat"])
    assert a == b != c and len(a) == DIGEST_CHARS


def test_a_file_path_also_covers_the_file_size_and_modification_time(tmp_path):
    image = tmp_path / "x.jpg"
    image.write_bytes(b"1234")
    before = item_digests([str(image)])[0]
    assert item_digests([image])[0] == before  # a Path is its string
    os.utime(image, ns=(0, 10**9))
    touched = item_digests([str(image)])[0]
    image.write_bytes(b"12345")
    os.utime(image, ns=(0, 10**9))
    assert len({before, touched, item_digests([str(image)])[0]}) == 3
    assert item_digests([str(tmp_path)])[0] == item_digests([str(tmp_path)])[0]  # a folder: its name only


def test_rows_of_arrays_and_tables_are_their_values():
    rows = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 3.0]])
    a, b, c = item_digests(rows)
    assert a == b != c
    assert item_digests(rows.astype(np.float32))[0] != a  # the dtype is part of the value
    frame = pd.DataFrame({"age": [50, 50, 51], "sex": ["f", "f", "f"]})
    x, y, z = item_digests(frame)
    assert x == y != z
    assert item_digests(frame.iloc[[2, 0]]) == [z, x]  # not the row's index


def test_addresses_pair_each_id_with_its_item():
    out = addresses(["s1", "s2"], ["same", "same"])
    assert [a.split("@")[0] for a in out] == ["s1", "s2"]
    assert out[0].split("@")[1] == out[1].split("@")[1]
    # an id ending in what looks like a digest cannot collide: the digest has a fixed length
    assert len(set(addresses(["a@b", "a"], ["x", "x"]))) == 2
