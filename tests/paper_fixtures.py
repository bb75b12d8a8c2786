"""What the paper suites (suites/lmic_cpu.toml, ...) need to validate offline: a data folder
laid out as ``$MMBENCH_DATA`` (tiny copies built by the tests/fixtures_*.py builders) and a
Hugging Face hub cache holding every model id the suites name, the way `hf download`
leaves it (``models--org--name/snapshots/<commit>/`` + ``refs/main``).

The models are tiny and randomly initialised, with the family's real file layout (config,
weights, tokenizer, image processor), so the encoders find, read and accept them as they
would the real checkpoints. timm checkpoints are the exception: their architecture is
fixed by the name (resnet50 is 100 MB), and validation only looks the file up, so they
are placeholder files; a test that extracts with them would fail loudly at load time.
"""

from __future__ import annotations

import json
from pathlib import Path

import fixtures_ham10000
from fixtures_brset import write_brset, write_mbrset
from fixtures_mimic import build_mimic_cxr, build_mimic_mortality
from fixtures_social import build_fakeddit, build_mvsa_single
from fixtures_tables import build_pairdx, build_satellitebench
from fixtures_vqa import make_coco_qa, make_daquar, make_recipes5k
from tiny_hf import tiny_clip_folder, tiny_siglip_folder

COMMIT = "0" * 40
#: the transformers models the suites name, by the builder that makes a tiny one
HF_MODELS = {
    "openai/clip-vit-base-patch32": "clip",
    "google/siglip-base-patch16-224": "siglip",
    "google/medsiglip-448": "siglip",
    "facebook/dinov2-base": "dinov2",
    "google/vit-base-patch16-224-in21k": "vit",
    "google-bert/bert-base-uncased": "bert",
    "FacebookAI/roberta-base": "roberta",
    "meta-llama/Llama-2-7b-hf": "llama",
    "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224": "biomedclip",
}
#: timm checkpoints the suites name (hub repository of the pretrained tag)
TIMM_MODELS = ("timm/resnet18.tv_in1k", "timm/resnet34.tv_in1k", "timm/resnet50.tv_in1k")
#: a local GloVe file the PairDxFusion suite names, relative to the data folder
GLOVE = "glove/glove.6B.300d.txt"
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "lesion", "photo", "of", "chart"]


def build_data(root: Path) -> Path:
    """``root`` laid out as the suites' ``$MMBENCH_DATA``: one tiny copy per dataset."""
    write_brset(root / "brset")
    write_mbrset(root / "mbrset")
    fixtures_ham10000.build(root / "ham10000")
    build_satellitebench(root / "satellitebench", "flat")
    build_mimic_cxr(root / "mimic-cxr-jpg")
    build_mimic_mortality(root / "mimic-ihm")
    make_recipes5k(root / "recipes5k")
    make_daquar(root / "daquar")
    make_coco_qa(root / "cocoqa")
    build_fakeddit(root / "fakeddit")
    build_pairdx(root / "pairdx", "single")
    build_mvsa_single(root / "mvsa_single")
    glove = root / GLOVE
    glove.parent.mkdir(parents=True)
    glove.write_text("".join(f"{w} {' '.join(['0.1'] * 4)}\n" for w in ("a", "photo", "of", "chart")))
    return root


def build_hub_cache(hub: Path) -> Path:
    """``hub`` holding a tiny model under every id of HF_MODELS and a placeholder file for
    every timm checkpoint of TIMM_MODELS."""
    for model_id, kind in HF_MODELS.items():
        BUILDERS[kind](_snapshot(hub, model_id))
    for model_id in TIMM_MODELS:
        (_snapshot(hub, model_id) / "model.safetensors").write_bytes(b"placeholder: looked up, never read")
    return hub


def _snapshot(hub: Path, model_id: str) -> Path:
    repo = hub / ("models--" + model_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    folder = repo / "snapshots" / COMMIT
    folder.mkdir(parents=True)
    return folder


def _dinov2(folder: Path) -> None:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    Dinov2Model(Dinov2Config(**_TOWER, patch_size=8, image_size=32, mlp_ratio=1)).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)


def _vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    ViTModel(ViTConfig(**_TOWER, patch_size=8, image_size=32, intermediate_size=32)).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)


def _bert(folder: Path) -> None:
    """BERT with BERT-base's 512 positions (the suites ask for up to 256 tokens)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    BertModel(BertConfig(vocab_size=len(WORDS), max_position_embeddings=512, intermediate_size=32,
                         **_TOWER)).save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)


def _roberta(folder: Path) -> None:
    """RoBERTa with roberta-base's 514 positions (512 usable)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    vocab = {w: i for i, w in enumerate(["<s>", "<pad>", "</s>", "<unk>", *WORDS[5:]])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                           special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>", cls_token="<s>", sep_token="</s>").save_pretrained(folder)
    RobertaModel(RobertaConfig(vocab_size=len(vocab), max_position_embeddings=514, pad_token_id=1,
                               intermediate_size=32, **_TOWER)).save_pretrained(folder)


def _llama(folder: Path) -> None:
    """A 1-layer LLaMA saved as the hub's Llama-2 is (LlamaForCausalLM, 4,096 positions)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *WORDS[5:]])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                                 bos_token_id=1, eos_token_id=2)).save_pretrained(folder)


def _biomedclip(folder: Path) -> None:
    """BiomedCLIP's repository layout, tiny: open_clip config with a Hugging Face BERT text
    tower, that BERT's config and tokenizer, and open_clip weights for the whole model."""
    from safetensors.torch import save_file

    from mmbench_encoders.open_clip_encoder import OpenClip

    _bert(folder)
    (folder / "model.safetensors").unlink()  # the tower's weights live in the open_clip checkpoint
    bert = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    model_cfg = {"embed_dim": 16,
                 "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
                 "text_cfg": {"hf_model_name": bert, "hf_tokenizer_name": bert, "hf_proj_type": "mlp",
                              "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 16}}
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}))
    model, _ = OpenClip(model=str(folder), pretrained="none").load_model()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "open_clip_model.safetensors"))


_TOWER = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
BUILDERS = {"clip": tiny_clip_folder, "siglip": tiny_siglip_folder, "dinov2": _dinov2, "vit": _vit,
            "bert": _bert, "roberta": _roberta, "llama": _llama, "biomedclip": _biomedclip}
