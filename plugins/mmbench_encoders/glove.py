"""GloVe word vectors from a local text file, pooled and as token sequences (PairDx, 2025).

The file is the standard ``glove.*.txt`` format: one word per line followed by its
floats, separated by single spaces (a word2vec-style first line ``N D`` is recognised and
skipped). Nothing is downloaded: ``path`` names the file.

Tokenisation is the PairDx paper's (PairDx, section 3.4): lower-case, strip ASCII punctuation
(``string.punctuation``: "don't" -> "dont", "x-ray" -> "xray"), split on whitespace,
truncate to the first ``max_tokens`` words (32 in the paper) and pad. Each text gives

- ``tokens``: a ``TokenSequence`` of ``(n, max_tokens, d)`` word vectors and a ``(n,
  max_tokens)`` mask of the real tokens (padding is zeros and masked), for attention
  fusions; and
- ``vectors``: the mean of the masked-in token vectors, ``(n, d)`` (zeros when a text has
  none), for every other fusion.

Words missing from the file (``unknown``): ``"skip"`` (default) leaves them in place as
zero vectors that are MASKED OUT, so they take no part in attention or the mean;
``"zero"`` keeps them as real (masked-in) zero vectors, so they dilute the mean and
attention sees them. Truncation happens before the look-up, so an unknown word still
takes one of the ``max_tokens`` positions, as in the paper's zero-padded pipeline.
Missing texts (None / NaN) are empty texts.

Loading: which words are needed is not known upfront, so the whole file is parsed once
per process into a float32 matrix and a word -> row dict (about 1.2 s and 60 MB for 50k x
300; the full 400k-word glove.6B.300d file: ~10 s and 480 MB), cached by path, size and
mtime (at most two files). Duplicate words keep their first vector; lines whose word
contains a space (a few in glove.840B) are skipped, since no whitespace-split token can
match them.

Fingerprint: name, ``max_tokens``, ``unknown``, the tokenisation version and the sha256
of the file (computed once per process per path, size and mtime). Not ``path``: the same
file in another place gives the same vectors.
"""

from __future__ import annotations

import string
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.files import file_state, sha256_file
from mmbench.params import Param
from mmbench.plugin import Encoder, stable_hash
from mmbench_encoders.texts import text_or_none

#: Changes whenever ``tokenize`` changes what it returns (it is part of the fingerprint).
TOKENISATION = "seed001-v1: lower, strip string.punctuation, whitespace split, truncate"
_STRIP = str.maketrans("", "", string.punctuation)

#: sha256 per (file, size, mtime_ns): computed once per process.
#: (word -> row, float32 matrix) per (file, size, mtime_ns); the oldest goes beyond two.
_TABLES: dict[tuple[str, int, int], tuple[dict[str, int], np.ndarray]] = {}
_MAX_TABLES = 2
_LOCK = threading.Lock()


def tokenize(text: str) -> list[str]:
    """The PairDx paper's tokenisation (before truncation): lower-case, punctuation stripped,
    whitespace split."""
    return text.lower().translate(_STRIP).split()


class Glove(Encoder):
    """GloVe word vectors (local file): token sequences for attention + their mean (PairDx, 2025).

    Texts are lower-cased, stripped of punctuation, split on whitespace and truncated /
    padded to ``max_tokens``; each word is looked up in the GloVe file named by ``path``.
    Returns the (n, max_tokens, d) token vectors with a mask of real, known tokens and,
    as the pooled vector, their mean. ``unknown = "skip"`` masks out words missing from
    the file; ``"zero"`` keeps them as real zero vectors.
    """

    name = "glove"
    modalities = ("text",)
    citation = ("Pennington, Socher & Manning, GloVe: Global Vectors for Word Representation, "
                "EMNLP 2014; nlp.stanford.edu/projects/glove")
    parameters = (
        Param("path", Path, Param.REQUIRED, "the GloVe text file (glove.*.txt: a word and its "
              "floats per line)", must_exist=True),
        Param("max_tokens", int, 32, "words kept per text: longer texts are truncated, shorter "
              "ones padded (PairDx, 2025: 32)", min=1, max=4096),
        Param("unknown", str, "skip", "words not in the file: 'skip' masks them out, 'zero' "
              "keeps them as real zero vectors", choices=("skip", "zero")),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        path = Path(str(self.params["path"])).expanduser()
        if not path.is_file():  # must_exist accepts folders too; checked during validation
            raise UserError(f"encoder 'glove': path {str(path)!r} is not a file; point it at a "
                            "GloVe text file such as glove.6B.300d.txt")
        self.path = path

    def fingerprint(self) -> str:
        return stable_hash({
            "name": self.name,
            "params": {k: v for k, v in self.params.items() if k != "path"},
            "tokenisation": TOKENISATION,
            "dtype": "float32",
            "file_sha256": sha256_file(self.path),
        })

    def encode(self, modality: str, items: Any) -> Any:
        from mmbench.data import Encoded, TokenSequence

        index, matrix = load_glove(self.path)
        texts = [text_or_none(self.name, item, i) or "" for i, item in enumerate(items)]
        n, t, d = len(texts), self.params.get("max_tokens", 32), matrix.shape[1]
        keep_unknown = self.params.get("unknown", "skip") == "zero"
        values = np.zeros((n, t, d), dtype=np.float32)
        mask = np.zeros((n, t), dtype=bool)
        at_i, at_j, rows = [], [], []
        for i, text in enumerate(texts):
            for j, word in enumerate(tokenize(text)[:t]):
                row = index.get(word)
                if row is not None:
                    at_i.append(i)
                    at_j.append(j)
                    rows.append(row)
                    mask[i, j] = True
                elif keep_unknown:
                    mask[i, j] = True
        if rows:
            values[at_i, at_j] = matrix[rows]
        counts = mask.sum(axis=1, keepdims=True)
        vectors = values.sum(axis=1, dtype=np.float64) / np.maximum(counts, 1)
        return Encoded(vectors.astype(np.float32), TokenSequence(values, mask))


# -- loading ----------------------------------------------------------------------------


def load_glove(path: str | Path) -> tuple[dict[str, int], np.ndarray]:
    """The file's word -> row dict and (V, d) float32 matrix, parsed once per process."""
    path = Path(path)
    key = file_state(path)
    with _LOCK:
        if key not in _TABLES:
            table = _parse(path)
            if len(_TABLES) >= _MAX_TABLES:
                _TABLES.pop(next(iter(_TABLES)))
            _TABLES[key] = table
        return _TABLES[key]


def _parse(path: Path) -> tuple[dict[str, int], np.ndarray]:
    where = f"encoder 'glove': {path}"
    index: dict[str, int] = {}
    chunks: list[np.ndarray] = []  # one (rows, d) block per 4096 lines: no quadratic growth
    block: list[np.ndarray] = []
    dim: int | None = None
    header_dim: int | None = None
    lineno = 0
    with warnings.catch_warnings():
        # np.fromstring warns on a non-number and stops there: make that an error to report
        warnings.simplefilter("error", DeprecationWarning)
        try:
            with open(path, encoding="utf-8") as handle:
                for lineno, line in enumerate(handle, start=1):
                    line = line.rstrip()
                    if not line:
                        continue
                    if lineno == 1 and _is_header(line):
                        header_dim = int(line.split()[1])
                        continue
                    word, _, rest = line.partition(" ")
                    try:
                        vector = np.fromstring(rest, dtype=np.float32, sep=" ")
                    except (ValueError, DeprecationWarning):
                        vector = None
                    if dim is None and vector is not None:
                        dim = vector.size
                    if vector is None or vector.size != dim or dim == 0:
                        if _word_with_space(rest, dim):
                            continue
                        raise UserError(_line_problem(where, lineno, word, rest, dim))
                    if word in index:
                        continue
                    index[word] = len(index)
                    block.append(vector)
                    if len(block) == 4096:
                        chunks.append(np.stack(block))
                        block = []
        except UnicodeDecodeError as exc:
            raise UserError(f"{where} is not UTF-8 text ({exc}); GloVe files are UTF-8 text, "
                            "one word and its floats per line") from None
        except OSError as exc:
            raise UserError(f"{where} cannot be read ({exc})") from None
    if block:
        chunks.append(np.stack(block))
    if not index:
        raise UserError(f"{where} holds no word vectors; expected a GloVe text file "
                        "(one word and its floats per line)")
    if header_dim is not None and header_dim != dim:
        raise UserError(f"{where}: inconsistent dimensions: the header line says {header_dim} "
                        f"values per word, the vectors have {dim}")
    matrix = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        word = list(index)[int(np.argmax(bad))]
        raise UserError(f"{where}: the vector of {word!r} holds a non-finite value (nan or inf)")
    return index, matrix


def _is_header(line: str) -> bool:
    parts = line.split()
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _word_with_space(rest: str, dim: int | None) -> bool:
    """A line like ``". . . 0.1 0.2 ..."``: its word holds spaces (glove.840B has a few);
    the last ``dim`` fields are numbers and the first extra one is not."""
    fields = rest.split()
    return (dim is not None and dim > 0 and len(fields) > dim and not _is_float(fields[0])
            and all(_is_float(f) for f in fields[-dim:]))


def _line_problem(where: str, lineno: int, word: str, rest: str, dim: int | None) -> str:
    fields = rest.split()
    for field in fields:
        if not _is_float(field):
            return (f"{where}, line {lineno}: malformed line: {field[:40]!r} is not a number "
                    f"(expected a word and its {dim or 'float'} values, separated by spaces)")
    if not fields:
        return (f"{where}, line {lineno}: malformed line: the word {word[:40]!r} has no values "
                "(expected a word and its floats, separated by spaces)")
    return (f"{where}, line {lineno}: inconsistent dimensions: {len(fields)} values for "
            f"{word[:40]!r}, earlier lines have {dim}")
