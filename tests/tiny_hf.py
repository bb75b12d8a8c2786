"""Tiny, randomly initialised Hugging Face vision-language models saved the way a hub
download is laid out (config.json, model.safetensors, tokenizer.json + tokenizer_config.json,
preprocessor_config.json), built offline from config objects in well under a second.

Tests of the ``hf_clip`` encoder and of the fusions that use a paired model (``zero_shot``,
``finetune``) point an encoder's ``model`` at these folders. The weights are seeded, so a
folder built twice holds the same model; the vectors mean nothing.
"""

from __future__ import annotations

from pathlib import Path

from mmbench_datasets.synthetic_raw import DESCRIPTORS, FILLERS, SITES

#: words the tiny tokenizers know (lower case): prompt words and synthetic_raw's caption
#: words, so captions of different classes get different token ids; the rest is <unk>.
WORDS = tuple(dict.fromkeys(
    "a an the photo of image picture lesion patient aged mm appearance and unknown class cat dog "
    "red green blue".split()
    + list(SITES) + list(DESCRIPTORS) + [w for f in FILLERS for w in f.split()]
))
#: the side of the square images the tiny models take (patches of 8 x 8: 16 patches)
IMAGE_SIZE = 32
#: text positions of the tiny models: the longest tokenised text, specials included
TEXT_POSITIONS = 24
TOWER = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}


def tiny_clip_folder(path: Path, seed: int = 0) -> Path:
    """Save a tiny CLIPModel (16-wide towers, 8-d projections, logit scale exp(2.6592) =
    14.29, CLIP's init) into ``path``, with a word-level tokenizer that adds CLIP's
    start / end tokens (``<bos> text <eos>``, pad ``<pad>``, lower-cased) and a
    CLIPImageProcessor (shortest edge and center crop 32). Returns ``path``; give it as
    ``model = str(path)`` to ``hf_clip``. Embeddings are 8-d."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tokenizer = _word_tokenizer(specials=("<pad>", "<unk>", "<bos>", "<eos>"), template="<bos> $A <eos>",
                                bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    config = CLIPConfig(
        text_config={**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": TEXT_POSITIONS,
                     "bos_token_id": ids("<bos>"), "eos_token_id": ids("<eos>"), "pad_token_id": ids("<pad>")},
        vision_config={**TOWER, "image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=8,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                   crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return _save(path, model, tokenizer, processor)


def tiny_siglip_folder(path: Path, seed: int = 0, logit_scale: float = 10.0, logit_bias: float = -5.0) -> Path:
    """Save a tiny SiglipModel (16-wide towers and embeddings) into ``path``, with a
    word-level tokenizer that appends SigLIP's "sticky" end token and pads with it
    (``text </s>``, pad ``</s>``, as google/siglip-*), and a SiglipImageProcessor (resize
    to 32 x 32). The learned temperature is set to ``logit_scale`` (stored as its log) and
    the bias to ``logit_bias``. MedSigLIP (google/medsiglip-448) is this architecture."""
    import math

    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    tokenizer = _word_tokenizer(specials=("<pad>", "<unk>", "</s>"), template="$A </s>",
                                eos_token="</s>", pad_token="</s>")
    config = SiglipConfig(
        text_config={**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": TEXT_POSITIONS,
                     "bos_token_id": None, "eos_token_id": tokenizer.convert_tokens_to_ids("</s>"),
                     "pad_token_id": tokenizer.convert_tokens_to_ids("</s>")},
        vision_config={**TOWER, "image_size": IMAGE_SIZE, "patch_size": 8},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiglipModel(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(logit_scale))
        model.logit_bias.fill_(logit_bias)
    processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return _save(path, model, tokenizer, processor)


def tiny_siglip2_folder(path: Path, seed: int = 0) -> Path:
    """Save a tiny Siglip2Model (16-wide towers and embeddings; NaFlex images of at most 16
    patches of 8 x 8, with their attention mask and spatial shapes) into ``path``, with a
    word-level tokenizer that appends ``</s>`` and pads with ``<pad>``, and a
    Siglip2ImageProcessor. Logit scale and bias are SigLIP 2's init."""
    import torch
    from transformers import Siglip2Config, Siglip2ImageProcessor, Siglip2Model

    tokenizer = _word_tokenizer(specials=("<pad>", "<unk>", "</s>"), template="$A </s>",
                                eos_token="</s>", pad_token="<pad>")
    config = Siglip2Config(
        text_config={**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": TEXT_POSITIONS,
                     "bos_token_id": None, "eos_token_id": tokenizer.convert_tokens_to_ids("</s>"),
                     "pad_token_id": tokenizer.convert_tokens_to_ids("<pad>")},
        vision_config={**TOWER, "num_patches": 16, "patch_size": 8},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Siglip2Model(config).eval()
    return _save(path, model, tokenizer, Siglip2ImageProcessor(patch_size=8, max_num_patches=16))


def _word_tokenizer(specials: tuple[str, ...], template: str, **tokens: str):
    """A lower-casing, whitespace / punctuation split word-level tokenizer over WORDS whose
    post-processor adds the model family's special tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    added = [t for t in template.split() if t != "$A"]
    backend.post_processor = processors.TemplateProcessing(single=template,
                                                           special_tokens=[(t, vocab[t]) for t in added])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>",
                                   model_max_length=TEXT_POSITIONS, **tokens)


def _save(path: Path, model, tokenizer, processor) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path
