"""GradMix masking, the random-location control, the rotation objective and the m-OvR heads, on tiny tensors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from osr.augment import MIXERS, make_plan, mask_size
from osr.masking import PLACERS, cam_peaks, layercam, noise_box, random_centres
from osr.models import build
from osr.objectives import masked, rotate_quarters, with_rotation


def test_mask_size_covers_10_to_50_percent_and_lam_eff_is_the_unclipped_remainder():
    for lam in np.linspace(0, 1, 11):
        box, lam_eff = mask_size(lam, 32, 32)
        area = (box[1] - box[0]) * (box[3] - box[2]) / 1024
        assert 0.08 <= area <= 0.5 and lam_eff == pytest.approx(1 - area)


def test_masking_plan_keeps_each_image_as_its_own_partner():
    maskers = [name for name, mixer in MIXERS.items() if mixer.placer is not None]
    assert maskers == ["gradmix", "noisebox"]
    for method in maskers:
        plan = make_plan(64, 16, 2, 0, method, 0.5, (32, 32))
        assert (plan["partner"] == np.arange(16)).all() and plan["mixed"].any() and not plan["mixed"].all()
        assert ((plan["lam"] >= 0.49) & (plan["lam"] <= 0.91)).all()


def test_layercam_peaks_where_activation_and_positive_gradient_meet():
    acts = torch.zeros(2, 3, 4, 4)
    acts[0, :, 1, 2] = 1.0
    acts[1, :, 3, 0] = 1.0
    grads = torch.ones_like(acts)
    grads[1, :, 0, 0] = -5.0  # negative gradients are cut by the ReLU
    cam = layercam([acts], [grads], (16, 16))
    assert cam.shape == (2, 16, 16) and cam.min() >= 0 and cam.max() <= 1 + 1e-6
    peaks = cam_peaks(cam)
    assert abs(peaks[0, 0].item() - 6) <= 2 and abs(peaks[0, 1].item() - 10) <= 2
    assert peaks[1, 0].item() >= 12 and peaks[1, 1].item() <= 3


def test_noise_box_fills_only_the_clipped_box_with_seeded_noise():
    x = torch.full((2, 3, 8, 8), 0.5)
    centres = torch.tensor([[4, 4], [0, 7]])
    out = noise_box(x, centres, (4, 2), seed=3)
    changed = (out != x).any(1)
    assert changed[0].sum() == 8 and changed[0, 2:6, 3:5].all()
    assert changed[1].sum() == 4 and changed[1, 0:2, 6:8].all()  # clipped at the top-right corner
    assert torch.equal(out[:, 0], out[:, 2])  # one noise value per pixel for all channels
    assert torch.equal(out, noise_box(x, centres, (4, 2), seed=3))
    assert not torch.equal(out, noise_box(x, centres, (4, 2), seed=4))
    r = random_centres(100, 8, 8, 0, torch.device("cpu"))
    assert r.min() >= 0 and r.max() < 8 and torch.equal(r, random_centres(100, 8, 8, 0, torch.device("cpu")))


class Spot(torch.nn.Module):
    """A model whose logits depend only on the image's top-left quarter, through `layer3`."""

    def __init__(self):
        super().__init__()
        self.layer3 = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        a = self.layer3(x)
        return self.fc(a[:, :, :4, :4].mean((2, 3)))


def test_gradmix_objective_masks_the_attributed_region_and_adds_the_weighted_masked_loss():
    torch.manual_seed(0)
    model = Spot()
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
    seen = []

    def masked_loss(z_m, x_m):
        seen.append(x_m)
        return F.cross_entropy(z_m, y)

    def clean(z):
        return F.cross_entropy(z, y)

    loss = masked("gradmix", y, (2, 2), 0.8, 5, ["layer3"], clean, masked_loss)(model, x)
    x_m = seen[0]
    changed = (x_m != x).any(1)
    # every box is centred inside the top-left quarter, where the logits look (a 2x2 box reaches one pixel out)
    assert changed.flatten(1).sum(1).ge(1).all() and not changed[:, 5:].any() and not changed[:, :, 5:].any()
    expected = clean(model(x)) + 0.8 * F.cross_entropy(model(x_m), y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    seen.clear()
    masked("noisebox", y, (2, 2), 0.8, 5, ["layer3"], clean, masked_loss)(model, x)
    assert PLACERS["gradmix"].needs_attribution and not PLACERS["noisebox"].needs_attribution
    assert {n for n, m in MIXERS.items() if m.placer} == set(PLACERS)
    assert (seen[0] != x).any(1).flatten(1).sum(1).le(4).all()


def test_cosine_head_rotation_head_and_unit_embedding():
    model = build("resnet18", 3, 4, 3, [0.5] * 3, [0.5] * 3, head="cosine", scale=32.0, rotation=True)
    x = torch.rand(4, 3, 16, 16)
    z = model(x)
    assert z.shape == (4, 3) and z.abs().max() <= 32.0 + 1e-4
    assert torch.allclose(model.embedding(x).norm(dim=1), torch.ones(4), atol=1e-5)
    x_rot, k = rotate_quarters(x)
    assert k.tolist() == [0, 1, 2, 3] and torch.equal(x_rot[2], x[2].flip(1).flip(2))
    loss = with_rotation(lambda z: z.sum() * 0.0, 1.0)(model, x)
    assert loss.item() == pytest.approx(np.log(4), abs=1.0)  # near-uniform 4-way rotation CE at init
    assert build("resnet18", 3, 4, 3, [0.5] * 3, [0.5] * 3).rotation is None
