"""A tiny paired image+text encoder with one shared space, so the fusions that need a
CLIP-like model (``zero_shot``, ``finetune``) are tested without CLIP weights.

Image tower: the chroma of the mean colour (mean RGB minus its grey level) -> Linear(3, D).
Text tower: the mean of hashed word embeddings. The embeddings of colour words are set
to the image tower's projection of that colour, so "a photo of a red" lies close to red
images: zero-shot classification works for classes named after their colour. Both towers
start from seeded weights, so every process builds the same model.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from mmbench import hookimpl
from mmbench.plugin import Encoder
from mmbench.trainable import TrainableEncoder

DIM = 8
VOCAB = 512
SIDE = 8  # images are resized to SIDE x SIDE before their colour is averaged
COLOURS = {"red": (1.0, 0.3, 0.3), "cyan": (0.3, 1.0, 1.0), "green": (0.3, 1.0, 0.3),
           "blue": (0.3, 0.3, 1.0), "yellow": (1.0, 1.0, 0.3), "magenta": (1.0, 0.3, 1.0)}
#: (modality, number of items, augment given?) for every ``prepare`` call: a spy for tests
PREPARE_CALLS: list[tuple[str, int, bool]] = []


def word_id(word: str) -> int:
    """A stable bucket per word (never 0, the padding id)."""
    return 1 + zlib.crc32(word.encode()) % (VOCAB - 1)


def build_towers():
    import torch
    from torch import nn

    class ImageTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(3, DIM, bias=False)

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # (b, 3, S, S) in [0, 1]
            colour = pixels.mean(dim=(2, 3))
            return self.proj(colour - colour.mean(dim=1, keepdim=True))

    class TextTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, DIM, padding_idx=0)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            mask = batch["mask"].unsqueeze(-1)
            return (self.embed(batch["ids"]) * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        image, text = ImageTower(), TextTower()
        with torch.no_grad():
            text.embed.weight.mul_(0.05)
            text.embed.weight[0].zero_()
            for word, rgb in COLOURS.items():
                colour = torch.tensor([rgb])
                text.embed.weight[word_id(word)] = image.proj(colour - colour.mean(dim=1, keepdim=True))[0]
    return {"image": image.eval(), "text": text.eval()}


def prepare_images(items, augment=None):
    import torch
    from mmbench_encoders.batching import open_image
    from PIL import Image

    PREPARE_CALLS.append(("image", len(items), augment is not None))
    rows = []
    for item in items:
        image = open_image(item) or Image.new("RGB", (SIDE, SIDE))
        if augment is not None:
            image = augment(image)
        rows.append(np.asarray(image.resize((SIDE, SIDE)), dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2).contiguous()


def prepare_texts(items, augment=None):
    import torch

    PREPARE_CALLS.append(("text", len(items), augment is not None))
    tokens = [[word_id(w) for w in re.findall(r"[a-z0-9]+", t.lower())] if isinstance(t, str) else []
              for t in items]
    width = max([len(t) for t in tokens] + [1])
    ids = torch.zeros((len(items), width), dtype=torch.long)
    for row, t in enumerate(tokens):
        ids[row, :len(t)] = torch.tensor(t, dtype=torch.long)
    return {"ids": ids, "mask": (ids > 0).float()}


class TinyPaired(Encoder):
    """Mean-colour image tower and word-bag text tower in one 8-d space."""

    name = "tiny_paired"
    modalities = ("image", "text")
    shared_space = True

    def _towers(self):
        if not hasattr(self, "towers"):
            self.towers = build_towers()
        return self.towers

    def encode(self, modality, items):
        import torch

        items = list(items)
        prepare = prepare_images if modality == "image" else prepare_texts
        with torch.inference_mode():
            vectors = self._towers()[modality](prepare(items)).numpy()
        missing = [i for i, item in enumerate(items) if item is None]
        vectors[missing] = 0.0
        self.advance(len(items))
        return vectors

    def logit_scale(self):
        return 100.0

    def trainable(self, modality):
        import copy

        module = copy.deepcopy(self._towers()[modality]).train()
        return TrainableEncoder(module=module, dim=DIM,
                                prepare=prepare_images if modality == "image" else prepare_texts)


@hookimpl
def mmbench_register_encoders():
    return [TinyPaired]
