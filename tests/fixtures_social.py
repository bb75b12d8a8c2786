"""Tiny copies of the MVSA-Single, MVSA-Multiple and Fakeddit layouts, with the real file
and column names and the known variants (nested archive folders, a header line and CRLF
endings, texts in mixed encodings, pandas' unnamed index column), for the loader tests
and the suite tests.

Images are small solid-colour JPEGs whose colour follows the class, so a weight-free
image encoder (colour histogram) has something to learn in an end-to-end run.
"""

from __future__ import annotations

from pathlib import Path

#: colour per class name, for the images
COLOURS = {"negative": (200, 30, 30), "neutral": (128, 128, 128), "positive": (30, 200, 30),
           "true": (30, 30, 200), "fake": (220, 160, 20)}
WORDS = {"negative": "awful sad broken", "neutral": "today usual photo", "positive": "great happy lovely"}
SENTIMENTS = ("negative", "neutral", "positive")

#: MVSA-Single special lines: id -> (label cell, text bytes, expected class or None if dropped)
MVSA_SINGLE_CASES = {
    "1": ("positive,positive", "Sunny day at the beach \U0001F600".encode("utf-8"), "positive"),
    "2": ("neutral,negative", "Café closed – so sad".encode("cp1252"), "negative"),
    "3": ("positive,negative", b"Mixed feelings about this", None),
    "4": ("negative,neutral", "\ufeffTerrible traffic again".encode("utf-8"), "negative"),
    "5": ("neutral,neutral", b"Just a picture of my desk", "neutral"),
    "6": ("Positive,Neutral", b"RT @someone: Great news for the team http://t.co/abc", "positive"),
    "7": ("positive,positive", b"Great news for the team http://t.co/xyz", "positive"),
}
#: MVSA-Multiple special lines: id -> (three annotator cells, expected class or None if dropped)
MVSA_MULTIPLE_CASES = {
    "1": (("positive,positive", "positive,neutral", "neutral,positive"), "positive"),
    "2": (("neutral,negative", "neutral,negative", "positive,negative"), "negative"),
    "3": (("positive,negative", "positive,negative", "neutral,neutral"), None),  # pos text vs neg image
    "4": (("positive,neutral", "negative,neutral", "neutral,neutral"), None),  # no text majority
    "5": (("neutral,neutral", "neutral,positive", "neutral,neutral"), "neutral"),
}
#: Fakeddit 6-way class -> the subreddit its posts come from (labels follow the subreddit)
SUBREDDITS = ("photoshopbattles", "theonion", "propagandaposters", "fakealbumcovers", "pic", "psbattle_artwork")
FAKEDDIT_COLUMNS = ("author", "clean_title", "created_utc", "domain", "hasImage", "id", "image_url",
                    "linked_submission_id", "num_comments", "score", "subreddit", "title", "upvote_ratio",
                    "2_way_label", "3_way_label", "6_way_label")
FAKEDDIT_SPLITS = {"train": 18, "validate": 6, "test_public": 6}


def write_image(path: Path, colour: tuple[int, int, int], size: int = 16) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path, format="JPEG")


def build_mvsa_single(root: Path, n_regular: int = 24, bad: bool = False) -> Path:
    """MVSA-Single as the archive unpacks (``root/MVSA_Single/``): a header line, CRLF
    endings, the special cases above, ``n_regular`` ordinary tweets (ids 101...) and with
    ``bad`` three bad samples: 901 without image, 902 with an empty text, 903 with an
    unknown label. Returns the archive folder."""
    folder = Path(root) / "MVSA_Single"
    lines = ["ID\ttext,image"]
    for sample_id, (cell, text, expected) in MVSA_SINGLE_CASES.items():
        lines.append(f"{sample_id}\t{cell}")
        _tweet(folder, sample_id, text, expected or "neutral")
    for i in range(n_regular):
        sample_id, label = str(101 + i), SENTIMENTS[i % 3]
        lines.append(f"{sample_id}\t{label},{label}")
        _tweet(folder, sample_id, f"{WORDS[label]} moment {i}".encode(), label)
    if bad:
        lines += ["901\tpositive,positive", "902\tnegative,negative", "903\thappy,positive"]
        (folder / "data" / "901.txt").write_bytes(b"an image that never arrived")
        _tweet(folder, "902", b"  \r\n", "negative")
        _tweet(folder, "903", b"what a day", "positive")
    (folder / "labelResultAll.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return folder


def build_mvsa_multiple(root: Path, n_regular: int = 24) -> Path:
    """MVSA-Multiple as the archive unpacks (``root/MVSA/``): three annotator cells per line,
    the special cases above and ``n_regular`` ordinary tweets. Returns the archive folder."""
    folder = Path(root) / "MVSA"
    lines = ["ID\ttext,image\ttext,image\ttext,image"]
    for sample_id, (cells, expected) in MVSA_MULTIPLE_CASES.items():
        lines.append("\t".join([sample_id, *cells]))
        _tweet(folder, sample_id, f"tweet {sample_id}".encode(), expected or "neutral")
    for i in range(n_regular):
        sample_id, label = str(101 + i), SENTIMENTS[i % 3]
        lines.append("\t".join([sample_id, *[f"{label},{label}"] * 3]))
        _tweet(folder, sample_id, f"{WORDS[label]} moment {i}".encode("cp1252"), label)
    (folder / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    return folder


def fakeddit_rows(split: str, n: int, has_image: bool = True) -> list[dict]:
    """``n`` posts of one split file, 6-way classes in turn (2- and 3-way derived)."""
    rows = []
    for i in range(n):
        six = i % 6
        sample_id = f"{split[:2]}{i:03d}{'x' if has_image else 'n'}"
        rows.append({
            "author": f"user{six}", "clean_title": f"{'real' if six == 0 else 'odd'} story number {i}",
            "created_utc": 1.5e9 + i, "domain": "i.imgur.com", "hasImage": has_image, "id": sample_id,
            "image_url": f"https://i.imgur.com/{sample_id}.jpg" if has_image else "",
            "linked_submission_id": "", "num_comments": float(i % 4) if i % 5 else float("nan"),
            "score": 10 * i + six, "subreddit": SUBREDDITS[six], "title": f"Story number {i}!",
            "upvote_ratio": 0.5 + six / 20, "2_way_label": int(six == 0), "3_way_label": 0 if six == 0 else 1 + six % 2,
            "6_way_label": six,
        })
    return rows


def build_fakeddit(root: Path, nested: bool = True, all_samples: bool = False, bad: bool = False,
                   image_folder: str = "public_image_set") -> Path:
    """Fakeddit v2.0: ``multimodal_only_samples/multimodal_{train,validate,test_public}.tsv``
    (``nested``; else at root) written the authors' way (pandas, with its unnamed index
    column), images ``{image_folder}/{id}.jpg``. ``all_samples`` adds
    ``all_samples/all_*.tsv``: the same posts plus two per split without an image.
    ``bad`` adds to train: ``badlabel`` (2_way_label 7), ``noimage`` (hasImage True, no
    file) and ``notitle`` (empty clean_title). Returns root."""
    import pandas as pd

    root = Path(root)
    for split, n in FAKEDDIT_SPLITS.items():
        rows = fakeddit_rows(split, n)
        for row in rows:
            write_image(root / image_folder / f"{row['id']}.jpg", COLOURS["true" if row["2_way_label"] else "fake"])
        if bad and split == "train":
            extra = fakeddit_rows("bad", 3)
            for row, name in zip(extra, ("badlabel", "noimage", "notitle")):
                row["id"] = name
                if name != "noimage":
                    write_image(root / image_folder / f"{name}.jpg", COLOURS["fake"])
            extra[0]["2_way_label"] = 7
            extra[2]["clean_title"] = ""
            rows = rows + extra
        folder = root / "multimodal_only_samples" if nested else root
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=FAKEDDIT_COLUMNS).to_csv(folder / f"multimodal_{split}.tsv", sep="\t")
        if all_samples:
            (root / "all_samples").mkdir(exist_ok=True)
            every = rows + fakeddit_rows(split, 2, has_image=False)
            pd.DataFrame(every, columns=FAKEDDIT_COLUMNS).to_csv(root / "all_samples" / f"all_{split}.tsv", sep="\t")
    return root


def _tweet(folder: Path, sample_id: str, text: bytes, label: str) -> None:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / f"{sample_id}.txt").write_bytes(text)
    write_image(folder / "data" / f"{sample_id}.jpg", COLOURS[label])
