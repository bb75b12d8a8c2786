"""Zero-shot classification with a paired image+text model (the PairDx paper's CLIP baseline).

Nothing is learned from the labels: each class becomes a text prompt, and a sample's
class probabilities are the softmax of its similarity to the prompts. It is the
reference point that fine-tuning (``finetune``) and trained fusions must beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.errors import UserError
from mmbench.fit_context import FitContext
from mmbench.params import Param
from mmbench.plugin import Fusion
from mmbench.train_config import FitReport

PAIRDX = ("PairDx 2025 (PairDxCLIP vs PairDxFusion, medical image-caption pairs): zero-shot CLIP, prompts 'a photo of a {class}', cosine x logit "
            "scale, softmax.")


class ZeroShot(Fusion):
    """Softmax over cosine(image vector, class prompt vector) x the model's logit scale.

    Prompts: every template with "{class}" replaced by the class name (``class_names``
    overrides the dataset's names, which are often codes); a class's vector is the mean of
    its L2-normalised prompt vectors, renormalised (CLIP's prompt ensembling). Probabilities
    are ``softmax(logit_scale * cos(features[modality], prompt))`` over the classes.

    The features are used as the run hands them over: an alignment (e.g. ``gap_shift``)
    may have moved the image vectors towards or away from the text side, and measuring what
    that does to zero-shot accuracy is a legitimate experiment, so nothing is undone here.

    Multilabel tasks are not supported: a softmax over classes assumes exactly one true
    class, and scoring each label alone would need a calibrated threshold or a negative
    prompt per label, which the paper does not define.
    """

    name = "zero_shot"
    citation = PAIRDX
    task_kinds = ("binary", "multiclass")
    uses_encoders = True
    parameters = (
        Param("modality", str, "image", "the modality classified; its encoder must be a paired "
              "image+text model (shared_space), which also encodes the prompts"),
        Param("templates", list, ["a photo of a {class}"], "prompt templates, each containing "
              "'{class}'; several are averaged (prompt ensembling)"),
        Param("class_names", list, [], "names used in the prompts, one per class in the dataset's "
              "class order (empty: the dataset's class names)"),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        templates = self.params["templates"]
        if not templates or not all(isinstance(t, str) and "{class}" in t for t in templates):
            raise UserError(f"fusion 'zero_shot': templates must be a non-empty list of strings that "
                            f"each contain '{{class}}', got {templates!r}")

    def modalities_used(self) -> set[str]:
        return {self.params["modality"]}  # its encoder also encodes the prompts

    def fit(self, train, val, config, ctx: FitContext | None = None) -> FitReport:
        modality = self.params["modality"]
        if modality not in train.features:
            raise UserError(f"fusion 'zero_shot': modality {modality!r} is not in this dataset "
                            f"(it has {sorted(train.features)}); set modality to one of them")
        encoder = (ctx or FitContext()).encoders.get(modality)
        if encoder is None or not encoder.shared_space:
            what = f"encoder {encoder.name!r}" if encoder is not None else "no encoder"
            raise UserError(f"fusion 'zero_shot': {modality!r} is encoded by {what}, but zero-shot "
                            f"classification needs a paired image+text model whose text vectors share "
                            f"its space ({_shared_space_encoders()}); encode {modality!r} with one of them")
        names = list(self.params["class_names"]) or list(train.classes)
        if len(names) != len(train.classes):
            raise UserError(f"fusion 'zero_shot': class_names has {len(names)} names for the "
                            f"{len(train.classes)} classes {list(train.classes)}; give one name per "
                            "class, in that order")
        prompts = {name: [t.replace("{class}", str(name)) for t in self.params["templates"]] for name in names}
        flat = [p for name in names for p in prompts[name]]
        encoded = encoder.encode("text", flat)
        vectors = _unit(np.asarray(getattr(encoded, "vectors", encoded), dtype=np.float64))
        per_class = vectors.reshape(len(names), len(self.params["templates"]), -1).mean(axis=1)
        self.class_vectors = _unit(per_class)
        self.scale = float(encoder.logit_scale())
        return FitReport(info={"prompts": prompts, "logit_scale": self.scale, "encoder": encoder.name,
                               "modality": modality})

    def predict_proba(self, data) -> np.ndarray:
        features = _unit(np.asarray(data.features[self.params["modality"]], dtype=np.float64))
        logits = self.scale * features @ self.class_vectors.T
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba[:, 1] if data.task == "binary" else proba


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; a zero row (a missing item) stays zero, so it scores every
    class alike (uniform probabilities) instead of producing NaNs."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _shared_space_encoders() -> str:
    """The installed paired encoders, for the error message (a hint only: never fails)."""
    try:
        from mmbench.registry import load_registry

        registry = load_registry()
        names = [name for name in registry.names("encoder") if registry.get("encoder", name).cls.shared_space]
    except Exception:  # noqa: BLE001 - the advice must not hide the real error
        names = []
    if names:
        return "installed: " + ", ".join(names)
    return "such as open_clip or hf_clip; none is installed"


FUSIONS = [ZeroShot]
