"""torch modules of OmniFuse (Wu et al., Information Fusion 117, 2025, 102890).

``DWFuseModel`` is section 3.4 alone: modality encoders (eq. 1) -> per-modality
classifiers g_m (eq. 9) and a joint head g_rc. ``OmniFuseModel`` adds section 3.3's
cascade residual autoencoders (CRA, eqs. 4-6) between the encoders and the heads, whose
latents feed g_rc (eq. 11). Both read ``{modality: (batch, d)}`` features plus
``{"mask/<modality>": (batch,)}`` (1.0 = present) and return a dict with "logits" (what
the harness predicts and selects epochs with) and what the losses below need.

A missing modality's embedding is its encoder's output on a ZERO input (section 3.3), so
a missing row's features are replaced by zeros before encoding: whatever fill the suite
put there never reaches the model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Above this many combinations (M > 6), TLA mines a reduced set (see ``combinations``).
MAX_COMBINATIONS = 63


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear: the paper's "several fully-connected layers"."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def combinations(n_modalities: int) -> torch.Tensor:
    """The modality combinations TLA ranks, as a (C, M) bool tensor.

    All 2^M - 1 non-empty subsets (section 3.5) while there are at most
    ``MAX_COMBINATIONS``; beyond that (M > 6), the M single modalities, the M
    leave-one-out sets and the full set, so the per-epoch cost stays linear in M.
    """
    m = n_modalities
    if 2**m - 1 <= MAX_COMBINATIONS:
        rows = [[bool(code >> i & 1) for i in range(m)] for code in range(1, 2**m)]
    else:
        eye = torch.eye(m, dtype=torch.bool)
        return torch.cat([eye, ~eye, torch.ones(1, m, dtype=torch.bool)])
    return torch.tensor(rows, dtype=torch.bool)


def hide(present: torch.Tensor, rate: float) -> torch.Tensor:
    """Training-time hiding for the imputation loss: which modalities the model may see.

    A sample with at least two present modalities is affected with probability ``rate``;
    it then keeps a uniformly drawn non-empty proper subset of its present modalities
    (each present modality kept with probability 1/2, redrawn until the subset is neither
    empty nor everything; after a few rounds, one random present modality). This covers
    every missing pattern of the paper's Table 1 for the modalities a sample has.
    """
    batch = present.shape[0]
    affected = (torch.rand(batch) < rate) & (present.sum(1) >= 2)
    if not bool(affected.any()):
        return present
    draw = torch.zeros_like(present)
    todo = affected.clone()
    for _ in range(8):
        fresh = (torch.rand(present.shape) < 0.5) & present
        draw = torch.where(todo[:, None], fresh, draw)
        kept = draw.sum(1)
        todo = affected & ((kept == 0) | (kept == present.sum(1)))
        if not bool(todo.any()):
            break
    if bool(todo.any()):  # one random present modality
        one = F.one_hot((torch.rand(present.shape) * present).argmax(1), present.shape[1]).bool()
        draw = torch.where(todo[:, None], one, draw)
    return torch.where(affected[:, None], draw, present)


def omega(p_true: torch.Tensor, present: torch.Tensor, beta: float) -> torch.Tensor:
    """DWFuse's down-weighting factor (eq. 10), a constant (no gradient flows through it).

    ``p_true`` is (M, batch, L): each modality's probability of the true class (L = 1
    for multiclass) or, per label, of the true value (binary / multilabel: the BCE
    analogue). ``present`` is (M, batch). A missing modality gives no evidence: its p_n
    counts as 0, so its factor (1 - p_n) is 1. Returns (M, batch, L):
    omega_m = [prod_{n != m} (1 - p_n)] ^ (beta / (M - 1)).
    """
    p = torch.where(present[:, :, None], p_true.detach(), torch.zeros_like(p_true))
    m = p.shape[0]
    if m < 2:
        return torch.ones_like(p)
    complement = 1.0 - p
    weights = []
    for i in range(m):
        others = torch.cat([complement[:i], complement[i + 1:]])
        weights.append(others.prod(0) ** (beta / (m - 1)))
    return torch.stack(weights)


def true_probability(logits: torch.Tensor, targets: torch.Tensor, multiclass: bool) -> torch.Tensor:
    """(batch, L) probability the head gives the true class (multiclass, L = 1) or, per
    label, the true 0/1 value (binary / multilabel)."""
    if multiclass:
        return torch.softmax(logits, dim=1).gather(1, targets[:, None])
    prob = torch.sigmoid(logits)
    return prob * targets + (1 - prob) * (1 - targets)


def elementwise_loss(logits: torch.Tensor, targets: torch.Tensor,
                     criterion: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The task loss per sample (and per label), with the criterion's class weights, and
    the normaliser that makes ``loss.sum() / norm`` equal ``criterion(logits, targets)``."""
    if isinstance(criterion, nn.CrossEntropyLoss):
        weight = criterion.weight
        loss = F.cross_entropy(logits, targets, weight=weight, reduction="none")[:, None]
        norm = weight[targets].sum() if weight is not None else torch.tensor(float(len(targets)))
        return loss, norm
    pos_weight = getattr(criterion, "pos_weight", None)
    loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    return loss, torch.tensor(float(loss.numel()))


def dwfuse_loss(output: dict, targets: torch.Tensor, criterion: nn.Module, alpha: float,
                beta: float) -> torch.Tensor:
    """L_DWFuse = L_enc + alpha * L_rc (eqs. 12-14).

    L_enc = sum_m omega_m * CE(g_m(v_m), y), summed over the modalities the model saw
    (a missing or hidden modality's term is left out); L_rc = CE(o, y) on the joint head.
    """
    multiclass = isinstance(criterion, nn.CrossEntropyLoss)
    per_modality = output["modality_logits"]  # (M, batch, C)
    seen = output["seen"].T  # (M, batch)
    p_true = torch.stack([true_probability(z, targets, multiclass) for z in per_modality])
    weights = omega(p_true, seen, beta)
    l_enc = per_modality.new_zeros(())
    for m, z in enumerate(per_modality):
        loss, norm = elementwise_loss(z, targets, criterion)
        l_enc = l_enc + (seen[m][:, None] * weights[m] * loss).sum() / norm
    return l_enc + alpha * criterion(output["joint_logits"], targets)


class ModalityEncoders(nn.Module):
    """e_m (eq. 1): one MLP per modality; a missing modality is encoded from zeros."""

    def __init__(self, in_dims: dict[str, int], hidden: int, embed: int):
        super().__init__()
        self.names = sorted(in_dims)
        self.nets = nn.ModuleDict({m: mlp(in_dims[m], hidden, embed) for m in self.names})

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, M, embed) embeddings and the (batch, M) present mask."""
        vectors, present = [], []
        for m in self.names:
            x = inputs[m]
            mask = inputs.get(f"mask/{m}")
            here = torch.ones(len(x), dtype=torch.bool) if mask is None else mask > 0.5
            vectors.append(self.nets[m](torch.where(here[:, None], x, torch.zeros_like(x))))
            present.append(here)
        return torch.stack(vectors, dim=1), torch.stack(present, dim=1)

    def placeholders(self) -> torch.Tensor:
        """(M, embed): each encoder's output on a zero input, the missing-slot embedding."""
        return torch.stack([self.nets[m](self.nets[m][0].weight.new_zeros(1, self.nets[m][0].in_features))[0]
                            for m in self.names])


class _Heads(nn.Module):
    """Per-modality classifiers g_m and the inference rule shared by both models."""

    def __init__(self, n_modalities: int, embed: int, joint_dim: int, head_hidden: int,
                 n_outputs: int, beta: float, multiclass: bool, inference: str):
        super().__init__()
        self.modality_heads = nn.ModuleList([mlp(embed, head_hidden, n_outputs) for _ in range(n_modalities)])
        self.joint_head = mlp(joint_dim, head_hidden, n_outputs)
        self.beta, self.multiclass, self.inference = beta, multiclass, inference

    def modality_logits(self, v: torch.Tensor) -> torch.Tensor:
        """(M, batch, C): g_m(v_m) for the (batch, M, embed) embeddings."""
        return torch.stack([head(v[:, m]) for m, head in enumerate(self.modality_heads)])

    def predict(self, joint_logits: torch.Tensor, modality_logits: torch.Tensor,
                seen: torch.Tensor) -> torch.Tensor:
        """Logits of the prediction rule (the true class is unknown at inference).

        "joint": the joint head o = g_rc(...) alone (the paper's Fig. 3b).
        "modalities": the per-modality heads of the modalities present, mixed with
        weights proportional to eq. 10 evaluated with each head's predicted-class
        confidence in place of the true-class probability; normalised over the present
        modalities these weights are proportional to (1 - conf_m)^(-beta / (M - 1)),
        so a confident modality counts more. Returned as logits of the mixture.
        """
        if self.inference == "joint":
            return joint_logits
        m = modality_logits.shape[0]
        if self.multiclass:
            prob = torch.softmax(modality_logits, dim=2)  # (M, batch, C)
            confidence = prob.max(dim=2, keepdim=True).values  # (M, batch, 1)
        else:
            prob = torch.sigmoid(modality_logits)
            confidence = torch.maximum(prob, 1 - prob)
        exponent = self.beta / max(m - 1, 1)
        raw = (1.0 - confidence).clamp_min(1e-6) ** (-exponent) * seen.T[:, :, None]
        weights = raw / raw.sum(0, keepdim=True).clamp_min(1e-12)
        mixed = (weights * prob).sum(0).clamp(1e-7, 1 - 1e-7)
        return torch.log(mixed) if self.multiclass else torch.logit(mixed)


class DWFuseModel(nn.Module):
    """Encoders -> g_m per modality; the joint head reads the concatenated embeddings
    (without CRA there are no autoencoder latents s_k for eq. 11 to use)."""

    def __init__(self, in_dims: dict[str, int], n_outputs: int, hidden: int, embed: int,
                 head_hidden: int, beta: float, multiclass: bool, inference: str):
        super().__init__()
        self.encoders = ModalityEncoders(in_dims, hidden, embed)
        self.heads = _Heads(len(in_dims), embed, embed * len(in_dims), head_hidden, n_outputs,
                            beta, multiclass, inference)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v, present = self.encoders(inputs)
        modality_logits = self.heads.modality_logits(v)
        joint_logits = self.heads.joint_head(v.flatten(1))
        return {"logits": self.heads.predict(joint_logits, modality_logits, present),
                "joint_logits": joint_logits, "modality_logits": modality_logits, "seen": present}


class ResidualAutoencoder(nn.Module):
    """One RA phi_k: an encoder to the latent s_k and a decoder back to dz_k."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.decode = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encode(x)
        return self.decode(latent), latent


class CascadeResidualAutoencoder(nn.Module):
    """CRA (eqs. 4-5): dz_1 = phi_1(v), dz_k = phi_k(v + sum_{j<k} dz_j); out = v + sum_k dz_k."""

    def __init__(self, dim: int, hidden: int, k: int):
        super().__init__()
        self.stages = nn.ModuleList([ResidualAutoencoder(dim, hidden) for _ in range(k)])

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        total = torch.zeros_like(v)
        latents = []
        for stage in self.stages:
            dz, latent = stage(v + total)
            total = total + dz
            latents.append(latent)
        return v + total, latents


class OmniFuseModel(nn.Module):
    """Encoders -> forward CRA imputation -> DWFuse heads; a backward CRA (eq. 6) for the
    cycle loss during training; TLA's extra pass on the lazy combination (section 3.5)."""

    def __init__(self, in_dims: dict[str, int], n_outputs: int, hidden: int, embed: int,
                 ra_hidden: int, head_hidden: int, k: int, beta: float, hide_rate: float,
                 multiclass: bool, inference: str, tla_samples: str = "matching"):
        super().__init__()
        m = len(in_dims)
        self.embed, self.hide_rate, self.tla_samples = embed, hide_rate, tla_samples
        self.encoders = ModalityEncoders(in_dims, hidden, embed)
        self.forward_cra = CascadeResidualAutoencoder(m * embed, ra_hidden, k)
        self.backward_cra = CascadeResidualAutoencoder(m * embed, ra_hidden, k)
        self.heads = _Heads(m, embed, k * ra_hidden, head_hidden, n_outputs, beta, multiclass, inference)
        self.register_buffer("combinations", combinations(m), persistent=False)
        #: TLA's lazy combination for the current epoch (all False: none mined yet).
        self.register_buffer("lazy", torch.zeros(m, dtype=torch.bool), persistent=False)

    def embed_inputs(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, M, embed) encoder outputs (zero-input placeholders where missing), present mask."""
        return self.encoders(inputs)

    def complete(self, v_true: torch.Tensor, seen: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward imputation from the modalities in ``seen``: v (eq. 2, unseen slots hold
        the zero-input placeholder), v' (eq. 5) as (batch, M, embed), and the latents s_k."""
        v = torch.where(seen[:, :, None], v_true, self.encoders.placeholders()[None])
        imputed, latents = self.forward_cra(v.flatten(1))
        return {"v": v, "v_prime": imputed.view_as(v), "latents": torch.cat(latents, dim=1)}

    def predict_from(self, v_true: torch.Tensor, seen: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predict from the modalities in ``seen``. The classifiers g_m read the encoder's
        v_m (eq. 9; only seen modalities' heads enter L_enc and the "modalities" rule), the
        joint head reads the forward CRA's latents (eq. 11)."""
        done = self.complete(v_true, seen)
        modality_logits = self.heads.modality_logits(done["v"])
        joint_logits = self.heads.joint_head(done["latents"])
        return {**done, "logits": self.heads.predict(joint_logits, modality_logits, seen),
                "joint_logits": joint_logits, "modality_logits": modality_logits, "seen": seen}

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v_true, present = self.embed_inputs(inputs)
        if not self.training:
            return self.predict_from(v_true, present)
        seen = hide(present, self.hide_rate)
        out = self.predict_from(v_true, seen)
        out["v_true"], out["present"] = v_true, present
        out["v_backward"] = self.backward_cra(out["v_prime"].flatten(1))[0].view_as(v_true)
        if bool(self.lazy.any()):
            index = tla_rows(present, self.lazy, self.tla_samples)
            if len(index):
                tla = self.predict_from(v_true[index], self.lazy.expand(len(index), -1))
                out["tla_logits"], out["tla_index"] = tla["logits"], index
        return out


def tla_rows(present: torch.Tensor, lazy: torch.Tensor, rule: str) -> torch.Tensor:
    """Indices of the batch samples L_TLA trains on, given their (batch, M) present masks.

    "matching" is eq. 16: Mask(s) = TRUE iff delta(s) = delta_lazy, the sample's own
    modality combination IS the lazy one (with nothing missing, TLA acts only when the full
    set is lazy). "containing" takes every sample that has all the lazy modalities and
    hides the others, so TLA acts at any missing rate.
    """
    if rule == "matching":
        eligible = (present == lazy).all(1)
    else:
        eligible = (present | ~lazy).all(1)
    return eligible.nonzero().flatten()


@torch.no_grad()
def rank_combinations(model: OmniFuseModel, inputs: dict[str, torch.Tensor], targets: torch.Tensor,
                      multiclass: bool, chunk: int = 8192) -> dict[int, float]:
    """TLA's laziness mining (eq. 15): score every combination, mark the worst as lazy.

    Each combination is scored on the samples that have all of its modalities, the
    others hidden: the mean over those samples of the L1 distance between the predicted
    probabilities and the labels. Sets ``model.lazy`` and returns {combination index:
    distance} (combinations no sample has are skipped). Leaves the model's mode as it was.
    """
    was_training = model.training
    model.eval()
    parts = [model.embed_inputs({k: x[i:i + chunk] for k, x in inputs.items()})
             for i in range(0, len(targets), chunk)]
    v_true, present = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    if multiclass:
        truth = F.one_hot(targets, model.heads.joint_head[-1].out_features).float()
    else:
        truth = targets
    distance: dict[int, float] = {}
    for index, combo in enumerate(model.combinations):
        rows = (present | ~combo).all(1).nonzero().flatten()
        if len(rows) == 0:
            continue
        logits = torch.cat([model.predict_from(v_true[rows[i:i + chunk]], combo.expand(len(rows[i:i + chunk]), -1))
                            ["logits"] for i in range(0, len(rows), chunk)])
        prob = torch.softmax(logits, dim=1) if multiclass else torch.sigmoid(logits)
        distance[index] = float((prob - truth[rows]).abs().sum(1).mean())
    if distance:
        model.lazy.copy_(model.combinations[max(distance, key=distance.get)])
    model.train(was_training)
    return distance


def masked_sq_error(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """||a - b||^2 over the (batch, M) slots in ``mask`` (summed over the embedding and the
    slots, as eqs. 7-8 write it), averaged over the samples of the batch."""
    per_slot = (a - b).pow(2).sum(dim=2)
    return (per_slot * mask).sum() / len(mask)


def omnifuse_loss(output: dict, targets: torch.Tensor, criterion: nn.Module, alpha: float,
                  beta: float, l1: float, l2: float, l3: float) -> torch.Tensor:
    """L = L_forward + l1 * L_backward + l2 * L_DWFuse + l3 * L_TLA (eq. 18)."""
    # eq. 7 on every slot whose truth is known (present before hiding); the truth is a
    # fixed target, so the encoders cannot shrink their embeddings to ease the imputation.
    l_forward = masked_sq_error(output["v_prime"], output["v_true"].detach(), output["present"])
    # eq. 8 on the modalities the model was given
    l_backward = masked_sq_error(output["v_backward"], output["v"].detach(), output["seen"])
    loss = l_forward + l1 * l_backward + l2 * dwfuse_loss(output, targets, criterion, alpha, beta)
    if "tla_logits" in output:  # eq. 17
        loss = loss + l3 * criterion(output["tla_logits"], targets[output["tla_index"]])
    return loss
