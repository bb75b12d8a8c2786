"""Base classes for the five kinds of plugin.

A plugin is a class with declarative metadata (name, version, modalities, task kinds,
parameters, citation) and a small behaviour contract. The registry reads the metadata
without instantiating anything, so listing and validating stay cheap; an instance is
made per run with its resolved parameters as ``self.params``.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mmbench.data import TASK_KINDS, DatasetTable, SplitData
from mmbench.errors import ParamsError
from mmbench.fit_context import NEW_FORM as NEW_FIT_FORM
from mmbench.fit_context import FitContext
from mmbench.hashing import stable_hash  # noqa: F401  (documented as mmbench.plugin.stable_hash)
from mmbench.params import Param, resolve_params

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
    #: Parameters that make a working instance on the conformance kit's generated data
    #: (``mmbench.testing.check_plugin``): give the required ones, e.g. a modality name.
    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any):
        # Checked like a suite's entry, whoever builds the plugin (the runner, a test, a
        # notebook, another plugin): unknown, mistyped and out-of-range values raise the
        # suite's messages, located at the class. Omitted parameters get their defaults.
        resolved, problems = resolve_params(self.parameters, params)
        if problems:
            where = f"{self.kind} {self.name!r} ({type(self).__name__})"
            raise ParamsError([(f"{where} {key}", message) for key, message in problems])
        # a default list or dict is copied, so one instance cannot change another's
        self.params = {key: value if key in params else copy.deepcopy(value) for key, value in resolved.items()}

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

    @abstractmethod
    def load(self) -> DatasetTable:
        raise NotImplementedError(f"{type(self).__name__} must define load()")

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

    @abstractmethod
    def encode(self, modality: str, items: Any) -> Any:
        """Return an (n, d) float array for ``items``, or a ``mmbench.data.Encoded`` that
        also carries token vectors. Run on ``self.device`` under ``torch.inference_mode()``;
        missing items (None) give zero vectors."""
        raise NotImplementedError(f"{type(self).__name__} must define encode()")

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

    @abstractmethod
    def transform(self, data: SplitData) -> SplitData:
        raise NotImplementedError(f"{type(self).__name__} must define transform()")

    def branch_loss(self) -> Callable[[dict[str, Any]], Any] | None:
        """An extra training loss on a fusion's per-modality branch outputs (Restrepo et al.'s
        L_reg), or None. Given to fusions whose ``exposes_branches`` is true; a suite
        pairing a regulariser with any other fusion fails that run with advice."""
        return None


class Fusion(Plugin):
    """Learns from train (+ validation for model selection) and predicts probabilities.

    ``predict_proba`` returns (n,) positive-class probabilities for binary tasks and
    (n, C) for multiclass (rows sum to 1) and multilabel (one probability per label).

    The capability attributes below are checked when the plugin registers (a wrong type or
    value marks it broken in ``mmbench plugins``); the runner reads them to decide what a
    run prepares and what goes into the ``FitContext``.
    """

    kind = "fusion"

    #: "embeddings": features per modality (most fusions); "raw": the raw items of each
    #: encoded modality in ``SplitData.raw`` plus the encoder objects (``ctx.encoders``),
    #: for methods that train the backbones themselves (``finetune``).
    consumes: ClassVar[Literal["embeddings", "raw"]] = "embeddings"
    #: True when ``fit`` needs the run's encoder objects per modality (``ctx.encoders``),
    #: e.g. ``zero_shot`` encoding its class prompts. Raw-input fusions always get them.
    uses_encoders: ClassVar[bool] = False
    #: True when the model's output carries per-modality branch outputs an alignment's
    #: regulariser can act on (``ctx.branch_loss``, Restrepo et al.'s L_reg); a suite pairing such an
    #: alignment with a fusion without branches fails that run with advice.
    exposes_branches: ClassVar[bool] = False
    #: True when the fusion reads ``SplitData.masks`` and copes with absent modalities;
    #: the others see the suite's fill (zeros or the train mean) in place of missing data.
    handles_missing: ClassVar[bool] = False
    #: The method's own training protocol (its paper's values); a suite's ``[train]`` and
    #: the fusion entry's ``train`` table override them.
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any):
        super().__init__(**params)
        #: where training runs, set by the runner from ``--device`` (also ``ctx.device``)
        self.device = "cpu"

    @abstractmethod
    def fit(self, train: SplitData, val: SplitData, config: TrainConfig,
            ctx: FitContext | None = None) -> FitReport:
        """Train on ``train``; use ``val`` only for model selection. ``ctx`` holds what the
        run hands over (see ``FitContext``): call ``ctx.progress(done, total)`` after each
        epoch so the runner can show progress. Code that fits a fusion directly may omit it."""
        raise NotImplementedError(f"{type(self).__name__} must define {NEW_FIT_FORM}")

    @abstractmethod
    def predict_proba(self, data: SplitData) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define predict_proba(data)")

    def modalities_used(self) -> set[str] | None:
        """The modalities this configuration reads (from ``self.params``), or None (the
        default) for every modality the dataset has. The runner encodes only raw modalities
        a fusion reads, and ``mmbench validate`` asks for an encoder for each of them only,
        so a one-modality fusion needs no encoder for the others."""
        return None


class Reporter(Plugin):
    """Writes a leaderboard in one format (markdown, CSV, JSON, plots...)."""

    kind = "reporter"
    #: a page that embeds files other reporters write (the markdown page shows the plots):
    #: it runs after the others
    embeds_others: ClassVar[bool] = False

    @abstractmethod
    def write(self, board: Leaderboard, out_dir: Path) -> list[Path]:
        raise NotImplementedError(f"{type(self).__name__} must define write(board, out_dir)")

    def targets(self, board: Leaderboard, out_dir: Path) -> list[tuple[Path, Callable[[bytes], bool]]]:
        """The files ``write`` will replace, each with the check that recognises one this
        reporter wrote (``mmbench.files.refuse_foreign``). mmbench checks every reporter's
        targets before any reporter writes, so a file of the user's in the way (the
        project's README.md under ``--output .``) stops the leaderboard with nothing written.
        Default: none (a reporter that lists none still refuses when it writes)."""
        return []


#: The base class each registration hook must return subclasses of.
PLUGIN_BASES: dict[str, type[Plugin]] = {
    "dataset": Dataset,
    "encoder": Encoder,
    "alignment": Alignment,
    "fusion": Fusion,
    "reporter": Reporter,
}


#: Each kind's declared capabilities: class attribute -> the values it may take. The
#: registry checks them when a plugin registers, so a typo is a broken plugin in
#: ``mmbench plugins``, not a failure when a run starts.
CAPABILITIES: dict[str, dict[str, tuple[Any, ...]]] = {
    "encoder": {"fitted": (False, True), "shared_space": (False, True)},
    "alignment": {"identity": (False, True)},
    "fusion": {"consumes": ("embeddings", "raw"), "uses_encoders": (False, True),
               "exposes_branches": (False, True), "handles_missing": (False, True)},
    "reporter": {"embeds_others": (False, True)},
}


def missing_methods(cls: type) -> list[str]:
    """The methods a plugin class must define but does not (its base's ``@abstractmethod``
    ones it never overrode, e.g. a misspelled ``build_model``): found at registration."""
    return sorted(name for name in dir(cls)
                  if getattr(getattr(cls, name, None), "__isabstractmethod__", False))
