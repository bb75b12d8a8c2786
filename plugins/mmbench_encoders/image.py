"""Image encoders without weights: colour histograms and HOG.

Items are image file paths (str or ``pathlib.Path``; read with Pillow, converted to RGB),
``PIL.Image`` objects, or numpy arrays: H x W x 3 (or x 4, alpha dropped) or H x W
grayscale, uint8 0..255 (float arrays are read as 0..1 and scaled). The items container
may be a list, a pandas Series or a stacked (n, H, W, 3) array. A missing item (None or
NaN) is encoded as a zero vector. Neither encoder learns from data (``fitted = False``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench.params import Param
from mmbench.plugin import Encoder

#: images converted and processed per chunk (bounds the memory of the HOG one-hot step)
CHUNK = 128


def to_rgb(item: Any) -> np.ndarray | None:
    """One item as an H x W x 3 uint8 array, or None for a missing item."""
    if item is None or (isinstance(item, float) and np.isnan(item)):
        return None
    if isinstance(item, (str, Path)):
        return np.asarray(open_rgb(item))
    if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
        return np.asarray(item.convert("RGB"))
    array = np.asarray(item)
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.nan_to_num(array) * 255.0 + 0.5, 0, 255)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255)
    array = array.astype(np.uint8, copy=False)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image array must be H x W, H x W x 3 or H x W x 4, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return array[:, :, :3]


def open_rgb(path: str | Path) -> Any:
    """The image file at ``path`` decoded as an RGB PIL image; a file that does not decode
    (truncated, not an image) raises ``DataError`` naming it, never Pillow's bare message."""
    from PIL import Image

    from mmbench.data import DataError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's decoders raise all three
        raise DataError(f"image file {str(path)!r} cannot be decoded ({type(exc).__name__}: {exc}); replace "
                        "or remove it (with on_bad_sample = \"skip\", datasets leave out truncated files when "
                        "they load)") from exc


def _resize(rgb: np.ndarray, size: int, mode: str = "RGB") -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(rgb)
    if mode != "RGB":
        image = image.convert(mode)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image)


class ColorHistogram(Encoder):
    """Per-channel colour histograms, each normalised to sum to 1 (fraction of pixels).

    Colour distribution is a strong, cheap cue for fundus, dermoscopy and satellite
    images; this is the classic weight-free baseline. ``color_space = "hsv"`` bins hue,
    saturation and value instead of red, green and blue (less sensitive to lighting).
    Output: 3 * ``bins`` values per image; ``sqrt`` applies the Hellinger (square-root)
    map, which suits linear classifiers on histograms.
    """

    name = "color_histogram"
    modalities = ("image",)
    parameters = (
        Param("bins", int, 16, "bins per channel (256 / bins intensity levels each)", min=2, max=256),
        Param("color_space", str, "rgb", "channels to histogram", choices=("rgb", "hsv")),
        Param("max_size", int, 256, "shrink larger images to this side first (speed; 0: never)", min=0),
        Param("sqrt", bool, False, "square-root (Hellinger) map of the normalised histograms"),
    )

    def encode(self, modality: str, items: Any) -> np.ndarray:
        bins, space, max_size = self.params["bins"], self.params["color_space"], self.params["max_size"]
        rows = []
        for item in items:
            rgb = to_rgb(item)
            if rgb is None:
                rows.append(np.zeros(3 * bins))
                continue
            if max_size and max(rgb.shape[:2]) > max_size:
                from PIL import Image

                image = Image.fromarray(rgb)
                image.thumbnail((max_size, max_size), Image.Resampling.BILINEAR)
                rgb = np.asarray(image)
            if space == "hsv":
                from PIL import Image

                rgb = np.asarray(Image.fromarray(rgb).convert("HSV"))
            pixels = rgb.reshape(-1, 3).astype(np.int64) * bins // 256  # bin index per channel
            counts = np.stack([np.bincount(pixels[:, c], minlength=bins) for c in range(3)])
            rows.append((counts / max(len(pixels), 1)).ravel())
        out = np.array(rows, dtype=np.float64).reshape(len(rows), 3 * bins)
        if self.params["sqrt"]:
            out = np.sqrt(out)
        return out.astype(np.float32)


class Hog(Encoder):
    """Histogram of oriented gradients (Dalal & Triggs, 2005), in numpy.

    Shape and texture without colour: each image is converted to grayscale and resized to
    ``size`` x ``size``; central-difference gradients vote by magnitude into
    ``orientations`` unsigned orientation bins (0-180 degrees, linear interpolation
    between neighbouring bins) per ``cell`` x ``cell`` pixel cell; each block of
    ``block`` x ``block`` cells (stride one cell) is L2-Hys normalised (L2, clip at 0.2,
    L2 again) and the blocks are concatenated. With the defaults (64, 8, 2, 9) that is
    7 * 7 * 2 * 2 * 9 = 1764 values per image. No spatial Gaussian weighting or
    trilinear cell interpolation (scikit-image's ``hog`` also omits them).
    """

    name = "hog"
    modalities = ("image",)
    citation = "Dalal and Triggs, Histograms of Oriented Gradients for Human Detection, CVPR 2005."
    parameters = (
        Param("size", int, 64, "side of the square grayscale image the features are taken from", min=8),
        Param("cell", int, 8, "cell side in pixels", min=2),
        Param("block", int, 2, "block side in cells (normalisation neighbourhood)", min=1),
        Param("orientations", int, 9, "unsigned orientation bins over 0-180 degrees", min=2),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        if p["size"] // p["cell"] < p["block"]:
            from mmbench.errors import UserError

            raise UserError(f"hog: size {p['size']} holds {p['size'] // p['cell']} cells of {p['cell']} "
                            f"pixels, fewer than one block of {p['block']}; raise size or lower cell / block")

    @property
    def dim(self) -> int:
        p = self.params
        blocks = p["size"] // p["cell"] - p["block"] + 1
        return blocks * blocks * p["block"] * p["block"] * p["orientations"]

    def encode(self, modality: str, items: Any) -> np.ndarray:
        size = self.params["size"]
        items = list(items) if not isinstance(items, np.ndarray) else items
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), CHUNK):
            chunk, present = [], []
            for i in range(start, min(start + CHUNK, len(items))):
                rgb = to_rgb(items[i])
                if rgb is not None:
                    chunk.append(_resize(rgb, size, "L"))
                    present.append(i)
            if chunk:
                out[present] = self._features(np.stack(chunk).astype(np.float64) / 255.0)
        return out

    def _features(self, gray: np.ndarray) -> np.ndarray:
        """HOG of (n, S, S) grayscale images in 0..1."""
        p = self.params
        n, cell, block, bins = len(gray), p["cell"], p["block"], p["orientations"]
        gx = np.zeros_like(gray)
        gy = np.zeros_like(gray)
        gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
        gy[:, 1:-1, :] = gray[:, 2:, :] - gray[:, :-2, :]
        magnitude = np.hypot(gx, gy)
        angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0  # unsigned, 0..180
        position = angle / (180.0 / bins) - 0.5  # bin centres at (k + 0.5) * width
        low = np.floor(position).astype(np.int64)
        upper_weight = position - low
        low %= bins
        high = (low + 1) % bins
        cells = p["size"] // cell
        crop = cells * cell
        m = magnitude[:, :crop, :crop].ravel()
        w = upper_weight[:, :crop, :crop].ravel()
        pixel = np.arange(m.size) * bins  # each pixel's own block of bins, voted by bincount
        votes = (np.bincount(pixel + low[:, :crop, :crop].ravel(), m * (1 - w), minlength=m.size * bins)
                 + np.bincount(pixel + high[:, :crop, :crop].ravel(), m * w, minlength=m.size * bins))
        votes = votes.reshape(n, crop, crop, bins)
        hist = votes.reshape(n, cells, cell, cells, cell, bins).sum(axis=(2, 4))  # (n, cy, cx, bins)
        nb = cells - block + 1
        blocks = np.stack([hist[:, y:y + block, x:x + block].reshape(n, -1)
                           for y in range(nb) for x in range(nb)], axis=1)  # (n, nb*nb, block*block*bins)
        eps = 1e-5
        blocks = blocks / np.sqrt((blocks ** 2).sum(axis=2, keepdims=True) + eps ** 2)
        blocks = np.minimum(blocks, 0.2)
        blocks = blocks / np.sqrt((blocks ** 2).sum(axis=2, keepdims=True) + eps ** 2)
        return blocks.reshape(n, -1)
