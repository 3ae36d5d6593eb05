"""GradMix's kNN classifier (methods.md §3.3, step 5): per class, the sum of the K largest cosine similarities to
that class's training features, normalised over the classes. Its maximum is the `knn` score (osr/scores.py), its
argmax the prediction of a contrastive model, whose kNN head (osr/models.py) computes it as logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_class_scores(f: torch.Tensor, bank: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor | list[int],
                     k: int) -> torch.Tensor:
    """[N, C]: s_c = sum of the top-k cosines of f [N, D] to the unit bank rows [M, D] of class c, then
    s_c / sum_c' s_c'. `classes`: the C class labels, in the order of the columns."""
    sim = F.normalize(f.float(), dim=1) @ bank.float().T
    s = torch.stack([sim.masked_fill(labels[None, :] != c, -torch.inf).topk(k, 1).values.sum(1) for c in classes], 1)
    return s / s.sum(1, keepdim=True).clamp_min(1e-12)
