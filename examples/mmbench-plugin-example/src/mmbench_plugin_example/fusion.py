"""The ``gated_sum`` fusion: metadata and parameters only; the torch module is in
``modules.py`` and imported inside ``build_model``, so listing plugins stays light."""

from __future__ import annotations

from mmbench.data import TASK_KINDS
from mmbench.params import Param
from mmbench.torch_fusion import TorchFusion


class GatedSum(TorchFusion):
    """Per-modality projections mixed by a learned softmax gate, then ReLU -> Linear."""

    name = "gated_sum"
    # Part of every run id: bump it whenever a change alters what the fusion computes.
    version = "0.1.0"
    citation = ("Arevalo et al., Gated Multimodal Units for Information Fusion, "
                "ICLR 2017 workshop (arXiv:1702.01992); a simplified gate.")
    modalities = ()  # any modalities, any number of them
    task_kinds = TASK_KINDS  # binary, multiclass, multilabel
    parameters = (
        Param("hidden", int, 64, "size of the shared space every modality is projected to",
              min=1, max=4096),
        Param("gate", str, "modality",
              "modality: one learned weight per modality; sample: weights per sample "
              "computed from the concatenated inputs", choices=("modality", "sample")),
        Param("dropout", float, 0.0, "dropout on the fused vector", min=0.0, max=0.95),
    )
    # The method's own protocol; a suite's [train] and the entry's train = {...} override it.
    train_defaults = {"epochs": 50, "patience": 10}

    def build_model(self, in_dims, n_outputs):
        from mmbench_plugin_example.modules import GatedSumModel

        return GatedSumModel(in_dims, self.params["hidden"], n_outputs,
                             gate=self.params["gate"], dropout=self.params["dropout"])
