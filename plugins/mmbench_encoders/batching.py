"""The extraction loop every image encoder with a neural backbone shares: decode and
resize the next batch while the model runs on this one, and report progress.

Decoding, resizing and cropping run in a small thread pool (Pillow releases the GIL) one
batch ahead of the forward pass when torch's threads leave cores free (``decode_threads``),
else in the calling thread. Missing items (None / NaN) are skipped: the caller's output
rows for them stay zero.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def open_image(item: Any) -> Any:
    """One image item (file path, PIL image, H x W (x 3 / x 4) array) as an RGB PIL
    image, or None for a missing item."""
    from PIL import Image

    from mmbench_encoders.image import open_rgb, to_rgb

    if item is None or (isinstance(item, float) and np.isnan(item)):
        return None
    if isinstance(item, (str, Path)):
        return open_rgb(item)
    if hasattr(item, "convert") and hasattr(item, "size"):
        return item.convert("RGB")
    return Image.fromarray(to_rgb(item))


def decode_threads(limit: int, torch_threads: int) -> int:
    """Decoding threads to use: at most ``limit``, and only on cores the forward pass's
    torch threads leave free. On a machine where torch already uses every core, decoding
    in extra threads only preempts them (measured: +20 % over the bare forward, vs +10 %
    decoding in the calling thread; benchmarks/README.md), so it runs in the calling
    thread between forward passes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(0, min(limit, cores - torch_threads))


def prepared_batches(items: Sequence[Any], batch_size: int, prepare: Callable[[Any], Any],
                     workers: int) -> Iterator[tuple[list[int], list[Any]]]:
    """Yield ``(rows, prepared)`` per batch of ``items``: the row numbers of the items that
    are present and ``prepare(item)`` for each (``prepare`` returns None for a missing
    item). The next batch is prepared in ``workers`` threads while the caller uses this one."""
    n = len(items)
    starts = list(range(0, n, batch_size))
    if not starts:
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="mmbench-decode") if workers else None

    def submit(start: int) -> list[Any]:
        batch = [items[i] for i in range(start, min(start + batch_size, n))]
        if pool is None:
            return [prepare(item) for item in batch]
        return [pool.submit(prepare, item) for item in batch]

    try:
        pending = {starts[0]: submit(starts[0])}
        for k, start in enumerate(starts):
            if k + 1 < len(starts):  # prepare the next batch while this one runs
                pending[starts[k + 1]] = submit(starts[k + 1])
            prepared = pending.pop(start)
            if pool is not None:
                prepared = [future.result() for future in prepared]
            present = [i for i, value in enumerate(prepared) if value is not None]
            yield [start + i for i in present], [prepared[i] for i in present]
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
