"""How long a real-dataset loader takes on a full-size table (a measurement, not a timed
test): the ``ham10000`` loader on a generated HAM10000-style metadata CSV of 10,000 and
100,000 rows, with one image file per row split over ``HAM10000_images_part_1/`` and
``_part_2/``. load() never decodes an image but opens each one to check it is complete (its
first and last bytes: an empty or truncated file is a bad sample), so every file is a small
but complete JPEG: the check reads what it would read of a real 600 x 450 one.

Targets: load() under 2 s for 10,000 rows and under 20 s for 100,000. Each round makes a
new loader, so the tree index and the metadata are read afresh every time.

Run: python -m pytest benchmarks/test_dataset_loading.py --benchmark-only -o addopts="" -s
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from mmbench_datasets.ham10000 import CLASSES, Ham10000

from mmbench.params import resolve_params

TARGETS = {10_000: 2.0, 100_000: 20.0}
#: class frequencies of the real table (6705 nv, 1113 mel, 1099 bkl, 514 bcc, 327 akiec, 142 vasc, 115 df)
FREQUENCIES = np.array([6705, 1113, 1099, 514, 327, 142, 115]) / 10015
DX_TYPES = np.array(["histo", "follow_up", "consensus", "confocal"])
SEXES = np.array(["male", "female", "unknown"])
SITES = np.array(["back", "lower extremity", "trunk", "upper extremity", "abdomen", "face", "chest", "foot",
                  "unknown", "neck", "scalp", "hand", "ear", "genital", "acral"])


def write_copy(root: Path, n: int) -> None:
    """A HAM10000-style copy of ``n`` rows: about 1.34 images per lesion as in the real
    data, ~0.6 % of ages missing, the real columns and file names."""
    import pandas as pd

    rng = np.random.default_rng(0)
    lesion = np.sort(rng.integers(0, int(n / 1.34), n))
    image_ids = np.char.add("ISIC_", np.char.zfill(np.arange(n).astype(str), 7))
    age = rng.integers(0, 18, n) * 5.0
    age[rng.random(n) < 0.006] = np.nan
    pd.DataFrame({
        "lesion_id": np.char.add("HAM_", np.char.zfill(lesion.astype(str), 7)),
        "image_id": image_ids,
        "dx": np.array(CLASSES)[rng.choice(len(CLASSES), n, p=FREQUENCIES)],
        "dx_type": DX_TYPES[rng.integers(0, len(DX_TYPES), n)],
        "age": age,
        "sex": SEXES[rng.choice(3, n, p=[0.54, 0.455, 0.005])],
        "localization": SITES[rng.integers(0, len(SITES), n)],
    }).to_csv(root / "HAM10000_metadata.csv", index=False)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 90)).save(jpeg, format="JPEG")
    for part, ids in enumerate(np.array_split(image_ids, 2), start=1):
        folder = root / f"HAM10000_images_part_{part}"
        folder.mkdir()
        for image_id in ids:
            (folder / f"{image_id}.jpg").write_bytes(jpeg.getvalue())


@pytest.fixture(scope="module", params=sorted(TARGETS))
def copy(request, tmp_path_factory) -> tuple[int, Path]:
    root = tmp_path_factory.mktemp(f"ham10000-{request.param}")
    write_copy(root, request.param)
    return request.param, root


def test_ham10000_load(benchmark, copy):
    n, root = copy
    params, problems = resolve_params(Ham10000.parameters, {"root": str(root)})
    assert not problems

    fingerprints = []
    for _ in range(3):
        start = time.perf_counter()
        Ham10000(**params).fingerprint()
        fingerprints.append(time.perf_counter() - start)

    table = benchmark.pedantic(lambda dataset: dataset.load(), setup=lambda: ((Ham10000(**params),), {}),
                               rounds=3, iterations=1)
    assert len(table) == n and table.skipped == {}
    assert len(table.modalities["text"]) == n and table.modalities["image"][0].endswith(".jpg")
    seconds = benchmark.stats.stats.median
    print(f"\nham10000 load(), {n} rows: median {seconds:.3f} s of 3 (target < {TARGETS[n]:.0f} s); "
          f"fingerprint(): median {statistics.median(fingerprints):.3f} s")
