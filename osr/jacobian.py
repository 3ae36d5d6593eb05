"""Jacobian-norm diagnostic (Park et al., arXiv 2209.11436) and inter-class separation of features.

``‖J‖_F`` of the representation f (the pooled feature feeding the head) with respect to the model's input is
estimated without building J: for v ~ N(0, I), E‖Jᵀv‖² = ‖J‖_F², and Jᵀv is one vector-Jacobian product.
"""
from __future__ import annotations

import numpy as np
import torch

from osr.pixels import to_float


def jacobian_norm(model: torch.nn.Module, x: torch.Tensor, n_proj: int = 2, batch_size: int = 128,
                  seed: int = 0) -> np.ndarray:
    """Per-sample Hutchinson estimate of ‖∂f/∂x‖_F for uint8 images [N, C, H, W] (eval mode, fp32)."""
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    out = []
    for i in range(0, len(x), batch_size):
        xb = to_float(x[i:i + batch_size]).requires_grad_(True)
        feats = getattr(model, "embedding", model.features)(xb)  # unit-normalised for a cosine head
        sq = torch.zeros(len(xb), device=x.device)
        for k in range(n_proj):
            v = torch.randn(feats.shape, generator=gen, device=x.device)
            (g,) = torch.autograd.grad((feats * v).sum(), xb, retain_graph=k < n_proj - 1)
            sq += g.pow(2).flatten(1).sum(1)
        out.append((sq / n_proj).sqrt().detach())
    return torch.cat(out).cpu().numpy() if out else np.zeros(0)


def class_separation(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean pairwise cosine similarity of the class-mean features (lower = better separated classes)."""
    classes = labels.unique()
    means = torch.stack([features[labels == c].mean(0) for c in classes])
    means = torch.nn.functional.normalize(means, dim=1)
    cos = means @ means.T
    k = len(classes)
    return float((cos.sum() - cos.diagonal().sum()) / max(1, k * (k - 1)))
