"""Records the overhead of the timm encoder's pipeline over the bare model (a
measurement, not a timed test): timm resnet18 (random init) at 224 x 224 on 512 generated
JPEGs, (a) ``TimmImage.encode`` on the file paths (decode + resize + crop + normalise +
forward) vs (b) the same model's forward on the same batches, already made as tensors.
``decode_workers = 0`` always decodes in the calling thread, between forward passes; with
``decode_workers = 2`` the encoder decodes in threads only on cores torch leaves free
(``batching.decode_threads``), so at 2 torch threads on 2 cores both take the same path.
Overhead = (a) / (b) - 1; target <= 15 %. Rounds alternate (b), (a) in the same process.

Run: HF_HUB_OFFLINE=1 python -m pytest benchmarks/test_extraction_overhead.py --benchmark-only -o addopts="" -s
"""

import statistics
import time

import numpy as np
import pytest
from mmbench_encoders.timm_image import TimmImage

N_IMAGES, WIDTH, HEIGHT, ROUNDS = 512, 384, 288, 3


def _write_jpegs(folder, n):
    """Photo-like JPEGs: smooth colour gradients, a few shapes and sensor noise (quality 90)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    paths = []
    for i in range(n):
        a, b, _ = rng.uniform(-1, 1, 3)
        base = rng.uniform(40, 200, 3)
        image = base + 60 * np.stack([np.sin(a * xx / 40 + b * yy / 50 + k) for k in range(3)], axis=-1)
        image += rng.normal(0, 8, image.shape)
        pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for _ in range(4):
            x0, y0 = rng.integers(0, WIDTH - 60), rng.integers(0, HEIGHT - 60)
            draw.ellipse([x0, y0, x0 + rng.integers(20, 60), y0 + rng.integers(20, 60)],
                         fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        path = folder / f"{i:04d}.jpg"
        pil.save(path, quality=90)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize(("torch_threads", "decode_workers"), [(2, 2), (1, 2), (2, 0)])
def test_pipeline_overhead_over_bare_forward(benchmark, tmp_path, torch_threads, decode_workers):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        paths = _write_jpegs(tmp_path, N_IMAGES)
        encoder = TimmImage(model="resnet18", weights="none", image_size=224, batch_size=32,
                            decode_workers=decode_workers)
        model = encoder.load_model()
        prepare = encoder.image_transform()
        batch_size = encoder.params["batch_size"]
        # (b)'s input: the very tensors the encoder feeds the model (channels-last, normalised)
        batches = [encoder.to_tensor([prepare(p) for p in paths[s:s + batch_size]])
                   for s in range(0, N_IMAGES, batch_size)]

        def bare():
            with torch.inference_mode():
                return [model(x) for x in batches]

        with torch.inference_mode():
            model(batches[0])  # warm-up (allocator, kernels, page cache)
        encoder.encode("image", paths[:64])
        bare_s, full_s = [], []

        def one_round():
            started = time.perf_counter()
            bare()
            bare_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            vectors = encoder.encode("image", paths)
            full_s.append(time.perf_counter() - started)
            return vectors

        vectors = benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
        expected = torch.cat(bare()).numpy()
        np.testing.assert_allclose(vectors, expected, rtol=1e-4, atol=1e-5)  # same work in (a) and (b)

        full, forward = statistics.median(full_s), statistics.median(bare_s)
        overhead = full / forward - 1
        benchmark.extra_info.update(torch_threads=torch_threads, decode_workers=decode_workers, full_s=round(full, 3),
                                    forward_s=round(forward, 3), overhead=round(overhead, 4))
        print(f"\ntimm resnet18 @224, {N_IMAGES} JPEGs {WIDTH}x{HEIGHT}, torch threads {torch_threads}, "
              f"decode workers {decode_workers}: "
              f"pipeline {full:.2f} s, bare forward {forward:.2f} s (medians of {ROUNDS}; "
              f"all: {[round(s, 2) for s in full_s]} vs {[round(s, 2) for s in bare_s]}), "
              f"overhead {overhead:+.1%} (target <= 15%)")
    finally:
        torch.set_num_threads(before)
