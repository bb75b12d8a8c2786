"""Base classes for the five kinds of plugin.

A plugin is a class with declarative metadata (name, version, modalities, task kinds,
parameters, citation) and a small behaviour contract. The registry reads the metadata
without instantiating anything, so listing and validating stay cheap; an instance is
made per run with its resolved parameters as ``self.params``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mmbench.data import TASK_KINDS, DatasetTable, SplitData
from mmbench.params import Param

if TYPE_CHECKING:
    from mmbench.leaderboard import Leaderboard
    from mmbench.trainable import TrainableEncoder
    from mmbench.training import FitReport, TrainConfig


class Plugin:
    """Metadata every plugin class declares."""

    kind: ClassVar[str] = ""
    #: Registry name used in suites: lower case, digits and underscores.
    name: ClassVar[str] = ""
    #: Plugin version; when omitted the distribution's version is used.
    version: ClassVar[str | None] = None
    #: One line shown by ``mmbench plugins``; defaults to the docstring's first line.
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    #: Modalities the plugin works with; empty means any.
    modalities: ClassVar[tuple[str, ...]] = ()
    task_kinds: ClassVar[tuple[str, ...]] = TASK_KINDS
    parameters: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **params: Any):
        # The runner passes every parameter, resolved and checked; code that makes a
        # plugin directly (tests, notebooks, other plugins) gets the defaults it omits.
        missing = {p.name: copy.deepcopy(p.default) for p in self.parameters
                   if p.name not in params and not p.required}
        self.params = {**missing, **params}

    @classmethod
    def summary(cls) -> str:
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class Dataset(Plugin):
    """Loads every sample of one dataset into a ``DatasetTable``."""

    kind = "dataset"

    def task_kind(self) -> str:
        """The task this configuration yields, known without loading the data."""
        if len(self.task_kinds) == 1:
            return self.task_kinds[0]
        raise NotImplementedError(
            f"{type(self).__name__} supports several task kinds: override task_kind()"
        )

    def raw_modalities(self) -> tuple[str, ...] | None:
        """The modalities whose items an encoder must turn into vectors, known without
        loading; a suite's encoders apply to these only. None (the default) means unknown:
        every encoder of the suite is kept. Datasets of vectors return ()."""
        return None

    def fingerprint(self) -> str:
        """Identity of the data: a change here is a new run, never a stale result.

        Called during validation, so it must be cheap. The default covers generated data
        (its parameters; the plugin's version is part of the run id anyway). Datasets read
        from disk override it to add what they read (file names, sizes, mtimes).
        """
        return stable_hash({"name": self.name, "params": self.params})

    def load(self) -> DatasetTable:
        raise NotImplementedError

    def info(self) -> dict[str, str]:
        """Extra lines for ``mmbench datasets info`` (e.g. the text template in use); the
        command itself shows counts, modalities, missing values and an example text."""
        return {}


class Encoder(Plugin):
    """Turns raw items of a modality (texts, image paths or arrays, table rows) into vectors."""

    kind = "encoder"
    #: True when ``fit`` learns from the data (a TF-IDF vocabulary, scalers): the vectors
    #: then depend on the train split too, and the embedding cache keys them by it.
    fitted: ClassVar[bool] = False
    #: True for a paired image+text model whose modalities share one embedding space
    #: (CLIP, SigLIP): such an encoder implements ``logit_scale`` and serves ``zero_shot``.
    shared_space: ClassVar[bool] = False

    def __init__(self, **params: Any):
        super().__init__(**params)
        #: where extraction runs, set by the runner from ``--device`` ("cpu", "cuda:0", ...)
        self.device = "cpu"
        self.on_items: Callable[[int], None] | None = None

    def advance(self, n: int) -> None:
        """Tell the runner ``n`` more items are encoded (after each batch): progress shows
        items and samples/s. An encoder that never calls it is shown done when it returns."""
        if self.on_items is not None:
            self.on_items(n)

    def fingerprint(self) -> str:
        """Everything that changes the vectors: model id, weights identity (file hash or
        revision), preprocessing, pooling, dtype, normalisation. Never the device: vectors
        extracted on a GPU serve a CPU run. The default (name and parameters) is right for
        encoders without weights; encoders with weights add their identity."""
        return stable_hash({"name": self.name, "params": self.params})

    def fit(self, modality: str, items: Any) -> None:
        """Fit on the TRAIN split only (vocabularies, scalers); most encoders need nothing."""

    def encode(self, modality: str, items: Any) -> Any:
        """Return an (n, d) float array for ``items``, or a ``mmbench.data.Encoded`` that
        also carries token vectors. Run on ``self.device`` under ``torch.inference_mode()``;
        missing items (None) give zero vectors."""
        raise NotImplementedError

    def logit_scale(self) -> float:
        """The model's learned temperature (CLIP's exp(t)): zero-shot logits are this times
        the cosine of image and prompt vectors. Only for ``shared_space`` encoders."""
        raise NotImplementedError(f"encoder {self.name!r} is not a paired image+text model")

    def trainable(self, modality: str) -> TrainableEncoder:
        """The backbone for ``modality`` as a module to train end to end (``finetune``): a
        fresh copy of the weights each call, so a fine-tuning run cannot change what later
        runs extract. Encoders without a differentiable backbone keep this default."""
        raise NotImplementedError(f"encoder {self.name!r} has no trainable backbone for {modality!r}; "
                                  "fine-tune with a neural encoder (open_clip, hf_clip, timm, hf_text, ...)")


class Alignment(Plugin):
    """Changes embeddings before fusion: fitted on train, applied to every split."""

    kind = "alignment"
    #: True for the alignment that changes nothing: the only one a raw-input fusion accepts
    identity: ClassVar[bool] = False

    def fit(self, train: SplitData) -> None:
        """Estimate what the alignment needs from the TRAIN split only."""

    def transform(self, data: SplitData) -> SplitData:
        raise NotImplementedError

    def branch_loss(self) -> Callable[[dict[str, Any]], Any] | None:
        """An extra training loss on a fusion's per-modality branch outputs (seed 000's
        L_reg), or None. Given to fusions whose ``exposes_branches`` is true; a suite
        pairing a regulariser with any other fusion fails that run with advice."""
        return None


class Fusion(Plugin):
    """Learns from train (+ validation for model selection) and predicts probabilities.

    ``predict_proba`` returns (n,) positive-class probabilities for binary tasks and
    (n, C) for multiclass (rows sum to 1) and multilabel (one probability per label).
    """

    kind = "fusion"

    def __init__(self, **params: Any):
        super().__init__(**params)
        #: where training runs, set by the runner from ``--device``
        self.device = "cpu"
    #: "embeddings": features per modality (most fusions); "raw": the raw items of each
    #: encoded modality in ``SplitData.raw`` plus the encoder objects (``encoders`` in
    #: ``fit``), for methods that train the backbones themselves (``finetune``).
    consumes: ClassVar[str] = "embeddings"
    #: True when ``fit`` takes ``encoders`` (the run's encoder objects per modality), e.g.
    #: ``zero_shot`` encoding its class prompts. Raw-input fusions always get them.
    uses_encoders: ClassVar[bool] = False
    #: True when the fusion reads ``SplitData.masks`` and copes with absent modalities;
    #: the others see the suite's fill (zeros or the train mean) in place of missing data.
    handles_missing: ClassVar[bool] = False
    #: The method's own training protocol (its paper's values); a suite's ``[train]`` and
    #: the fusion entry's ``train`` table override them.
    train_defaults: ClassVar[dict[str, Any]] = {}

    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            on_epoch: Callable[[int, int], None] | None = None) -> FitReport:
        """Train on ``train``; use ``val`` only for model selection. Call ``on_epoch(done,
        total)`` after each epoch so the runner can show progress."""
        raise NotImplementedError

    def predict_proba(self, data: SplitData) -> Any:
        raise NotImplementedError


class Reporter(Plugin):
    """Writes a leaderboard in one format (markdown, CSV, JSON, plots...)."""

    kind = "reporter"
    #: a page that embeds files other reporters write (the markdown page shows the plots):
    #: it runs after the others
    embeds_others: bool = False

    def write(self, board: Leaderboard, out_dir: Path) -> list[Path]:
        raise NotImplementedError


#: The base class each registration hook must return subclasses of.
PLUGIN_BASES: dict[str, type[Plugin]] = {
    "dataset": Dataset,
    "encoder": Encoder,
    "alignment": Alignment,
    "fusion": Fusion,
    "reporter": Reporter,
}


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hash of JSON-able data that is the same on every machine and Python run."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
