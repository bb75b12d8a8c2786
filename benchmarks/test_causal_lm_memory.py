"""Records what int8 weights save with the ``causal_lm`` encoder (a measurement, not a
timed test): a random-init LLaMA (hidden 512, 4 layers, 8 heads, MLP 1376, vocab 32000),
saved in float16 as Llama-2's checkpoints are: 29.0M parameters in the base model that is
loaded (16.4M in the embedding table, which stays in ``dtype``, and 12.6M in Linear layers;
the LM head on disk is not loaded). It is embedding-heavy (LLaMA-2-7B: 2 % embeddings), so
int8 saves less here than on a real LLM. Each setting runs in a FRESH subprocess (1 torch
thread): load, encode 8 texts (warm-up), then 64 texts of 16-128 tokens (batch 8).

Per setting: the weights' bytes in memory; RSS after importing torch, transformers and the
LLaMA code; then, the peak reset there via ``/proc/self/clear_refs`` (the imports' own
transient peak would hide a model this size), the peak RSS while loading, the RSS once
loaded and the peak after encoding, read as ``VmHWM`` (the counter ``ru_maxrss`` reports;
``ru_maxrss`` also keeps the peak recorded when any thread exits, which the reset does not
clear); the time to encode the 64 texts; the cosine of each setting's vectors with float32's.

The children run with glibc's mmap threshold pinned (``MALLOC_MMAP_THRESHOLD_=131072``): a
7B model's tensors (32-180 MB) are always mmapped, so freed ones leave RSS at once, but this
model's 0.5-3 MB tensors would otherwise go to the heap under glibc's dynamic threshold,
where freed memory often stays resident: the numbers then vary by +-15 MiB between runs
with allocation order. Pinned, they are the same every run and count what is alive. The
extra mmap calls slow encoding (float32: ~1.9 s pinned vs ~1.4 s default), so compare the
times between settings only.

Run: HF_HUB_OFFLINE=1 python -m pytest benchmarks/test_causal_lm_memory.py --benchmark-only -o addopts="" -s
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SETTINGS = {
    "float32": {},
    "bfloat16": {"dtype": "bfloat16"},
    "int8": {"quantize": "int8"},
    "int8+bfloat16": {"quantize": "int8", "dtype": "bfloat16"},
}
N_TEXTS, VOCAB = 64, 32000

CHILD = """
import json, resource, sys, time
def status_mib(field):
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field)).split()[1]) / 1024
def rss_mib():
    return status_mib("VmRSS:")
def peak_mib():  # this mm's high-water mark: ru_maxrss, but resettable (ru_maxrss also keeps
    return status_mib("VmHWM:")  # the peak recorded when any thread exits, which no reset clears)
import numpy as np, torch, transformers
import transformers.models.llama.modeling_llama  # ~200 MiB of code and tables, whatever the weights
torch.set_num_threads(1)
from mmbench_encoders.causal_lm import CausalLM
folder, params, texts_file, out_file = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
texts = json.loads(open(texts_file).read())
report = {"imports_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB
          "base_mib": rss_mib()}
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # reset the peak to the current RSS: the imports' transient peak hides the model
encoder = CausalLM(model=folder, max_length=256, batch_size=8, **params)
_, model = encoder.load_model()
report["load_peak_mib"], report["loaded_mib"] = peak_mib(), rss_mib()
report["weights_mib"] = sum(t.nbytes for t in (*model.parameters(), *model.buffers())) / 2**20
encoder.encode("text", texts[:8])  # warm-up: first-call kernel and allocator set-up
started = time.perf_counter()
vectors = encoder.encode("text", texts)
report["encode_s"] = time.perf_counter() - started
report["peak_mib"] = peak_mib()
np.save(out_file, vectors)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("llama")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(VOCAB - 3)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=512,
                         tie_word_embeddings=False)
    LlamaForCausalLM(config).half().save_pretrained(folder)
    return folder


def test_int8_memory_and_agreement_with_float32(benchmark, model_folder, tmp_path):
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{i}" for i in rng.integers(3, VOCAB, int(rng.integers(16, 129))))
             for _ in range(N_TEXTS)]
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts))
    reports, vectors = {}, {}

    def run_all():
        for name, params in SETTINGS.items():
            out = tmp_path / f"{name}.npy"
            done = subprocess.run([sys.executable, "-c", CHILD, str(model_folder), json.dumps(params),
                                   str(texts_file), str(out)], capture_output=True, text=True, check=True,
                                  env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"})
            reports[name] = json.loads(done.stdout.strip().splitlines()[-1])
            vectors[name] = np.load(out)

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    reference = vectors["float32"]
    print(f"\ncausal_lm, random-init LLaMA (29.0M parameters loaded), {N_TEXTS} texts of 16-128 tokens, 1 thread")
    print("| setting | weights in memory | RSS after imports | peak while loading | RSS loaded "
          "| peak incl. encoding | encode | cosine vs float32 (min / mean) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, report in reports.items():
        v = vectors[name]
        cosine = (v * reference).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(reference, axis=1)
        report["cosine_min"], report["cosine_mean"] = float(cosine.min()), float(cosine.mean())
        benchmark.extra_info[name] = report
        base = report["base_mib"]
        print(f"| {name} | {report['weights_mib']:.0f} MiB | {base:.0f} MiB "
              f"(peak {report['imports_peak_mib']:.0f}) | +{report['load_peak_mib'] - base:.0f} MiB "
              f"| +{report['loaded_mib'] - base:.0f} MiB | +{report['peak_mib'] - base:.0f} MiB "
              f"| {report['encode_s']:.2f} s | {cosine.min():.5f} / {cosine.mean():.5f} |")
    assert reports["int8"]["weights_mib"] < reports["float32"]["weights_mib"]
    assert min(reports[name]["cosine_min"] for name in SETTINGS) > 0.9
