import numpy as np
import pytest
import torch

from osr import OSRError
from osr.augment import (
    MIXERS,
    STUDENT_STREAM,
    BaseAug,
    cutmix_box,
    epoch_order,
    make_plan,
    rand_augment,
    random_crop_flip,
)


def _images(n=16, c=3, hw=32):
    return torch.randint(0, 256, (n, c, hw, hw), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_crop_flip_is_seeded_shape_preserving_and_uint8():
    x = _images()
    a = random_crop_flip(x, torch.Generator().manual_seed(3))
    b = random_crop_flip(x, torch.Generator().manual_seed(3))
    assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, random_crop_flip(x, torch.Generator().manual_seed(4)))


def test_crop_without_pad_or_flip_is_identity_and_pad_shifts_content():
    x = _images(4)
    assert torch.equal(random_crop_flip(x, torch.Generator().manual_seed(0), pad=0, flip=False), x)
    y = random_crop_flip(x, torch.Generator().manual_seed(0), pad=4, flip=False)
    # every output row is a (possibly zero-padded) shifted window of the input
    assert ((y == 0).float().mean() > 0) or torch.equal(y, x)


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_runs_per_image_groups(channels):
    x = _images(64, channels)
    y = rand_augment(x, torch.Generator().manual_seed(0), 9)
    assert y.shape == x.shape and y.dtype == torch.uint8
    changed = (y != x).flatten(1).any(1).float().mean()
    assert 0.5 < changed <= 1.0  # identity (and some no-op ops) leave a few images unchanged
    assert torch.equal(BaseAug(randaugment=9)(x, 5), BaseAug(randaugment=9)(x, 5))


def test_mixers():
    x = torch.rand(4, 3, 8, 8)
    perm = torch.tensor([1, 0, 3, 2])
    assert not MIXERS["none"].mixes and MIXERS["mixup"].mixes and MIXERS["gradmix"].mixes
    assert torch.allclose(MIXERS["mixup"](x, perm, 0.3, None), 0.3 * x + 0.7 * x[perm])
    out = MIXERS["cutmix"](x, perm, 0.75, np.array([0, 4, 0, 4]))
    assert torch.equal(out[:, :, :4, :4], x[perm][:, :, :4, :4]) and torch.equal(out[:, :, 4:, :], x[:, :, 4:, :])


def test_cutmix_box_lambda_is_area_corrected():
    rng = np.random.default_rng(0)
    for lam in (0.1, 0.5, 0.9):
        box, lam2 = cutmix_box(lam, 32, 32, rng)
        y0, y1, x0, x1 = box
        assert 0 <= y0 <= y1 <= 32 and 0 <= x0 <= x1 <= 32
        assert lam2 == pytest.approx(1 - (y1 - y0) * (x1 - x0) / 1024)


def test_plan_is_deterministic_and_well_formed():
    a = make_plan(100, 16, 3, 7, "cutmix", 0.5, (32, 32))
    b = make_plan(100, 16, 3, 7, "cutmix", 0.5, (32, 32))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["order"].shape == (3, 6, 16) and a["partner"].shape == (3, 6, 16)
    assert all(len(set(o.ravel())) == 96 for o in a["order"])  # no image twice in an epoch
    assert 0.0 <= a["lam"].min() and a["lam"].max() <= 1.0
    assert not make_plan(100, 16, 2, 7, "none", 0.5, (32, 32))["mixed"].any()
    assert not np.array_equal(a["order"][0], make_plan(100, 16, 1, 8, "cutmix", 0.5, (32, 32))["order"][0])


def test_plan_rejects_bad_values():
    with pytest.raises(OSRError, match="augment.method"):
        make_plan(100, 16, 1, 0, "blend", 0.5, (32, 32))
    with pytest.raises(OSRError, match="batch_size"):
        epoch_order(10, 16, 0, 0, STUDENT_STREAM)


@pytest.mark.parametrize("method", ["none", "cutmix", "gradmix"])
def test_preview_shows_the_first_mixed_step_with_titles(method):
    from osr.preview import preview

    x = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(32) % 4
    plan = make_plan(32, 8, 1, 0, method, 0.5, (8, 8))
    imgs, titles, caption = preview(x, y, plan, BaseAug(randaugment=0), 5, ["a", "b", "c", "d"])
    assert imgs.shape == (5, 8, 8, 3) and imgs.dtype == np.uint8 and len(titles) == 5
    assert caption.startswith(method) and ("random places" in caption) == (method == "gradmix")
    assert ("+" in titles[0]) == (method == "cutmix") and ("λ=" in titles[0]) == (method != "none")
