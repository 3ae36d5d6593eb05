"""GradMix as published (methods.md §3.3): each piece of the contrastive teacher against the released code's formulas
(gawainxu/GradMix: losses.py SupConLoss, datautil.py layer_salient_maps / rand_bbox / salient_cutmix,
main_testing.py KNN_logits), transcribed here as a second implementation, on fixed random tensors; the two views
against torchvision; and a tiny `dvc repro` with `teacher.loss=gradmix_con`."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from conftest import make_project, needs_mirror, sh, stage_report
from osr.augment import make_plan
from osr.contrastive import contrastive_loss, released_box, step_lam
from osr.masking import cam_peaks, layercam, noise_box
from osr.models import KnnHead
from osr.scores import SCORES, bank_of
from osr.views import COLOUR_OPS, crop_boxes, resized_crop, two_views

T, BT = 0.05, 0.07


def released_supcon(features, labels=None, features_positive=None, temperature=T, base_temperature=BT):
    """losses.py SupConLoss.forward (contrast_mode "all"), features [bsz, n_views, D], as released."""
    batch_size = features.shape[0]
    if labels is None:
        mask = torch.eye(batch_size, dtype=torch.float32)
    else:
        labels = labels.contiguous().view(-1, 1)
        mask = torch.eq(labels, labels.T).float()
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    contrast_feature_positive = (torch.cat(torch.unbind(features_positive, dim=1), dim=0)
                                 if features_positive is not None else contrast_feature)
    contrast_feature_negative = contrast_feature
    anchor_feature, anchor_count = contrast_feature, contrast_count
    dot_pos = torch.div(torch.matmul(anchor_feature, contrast_feature_positive.T), temperature)
    dot_neg = torch.div(torch.matmul(anchor_feature, contrast_feature_negative.T), temperature)
    logits_max_positive, _ = torch.max(dot_pos, dim=1, keepdim=True)
    logits_positive = dot_pos - logits_max_positive.detach()
    logits_max_negative, _ = torch.max(dot_neg, dim=1, keepdim=True)
    logits_negative = dot_neg - logits_max_negative.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits_negative = torch.exp(logits_negative) * logits_mask
    log_prob = logits_positive - torch.log(exp_logits_negative.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / (mask.sum(1))
    loss = - (temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchor_count, batch_size).mean()


def unit(*shape, seed):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def stacked(v1, v2):
    """The released code's [bsz, 2, D] from the two views' features."""
    return torch.cat([v1.unsqueeze(1), v2.unsqueeze(1)], dim=1)


B, D = 12, 32
V1, V2, M1, M2 = (unit(B, D, seed=s) for s in range(4))
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3, 0, 1, 2, 0])


def test_supcon_is_the_released_supcon_on_the_labels():
    ours = contrastive_loss(torch.cat([V1, V2]), T, BT, labels=LABELS)
    assert ours.item() == pytest.approx(released_supcon(stacked(V1, V2), LABELS).item(), abs=1e-6)


def test_ntxent_is_the_released_label_free_loss():
    ours = contrastive_loss(torch.cat([V1, V2]), T, BT)
    assert ours.item() == pytest.approx(released_supcon(stacked(V1, V2)).item(), abs=1e-6)
    assert ours.item() != pytest.approx(contrastive_loss(torch.cat([V1, V2]), T, BT, labels=LABELS).item(), abs=1e-3)


def test_ntxent_with_the_masked_positive_matches_the_released_value_and_gradient():
    """The positives are the forward of [m1; v2']: view-2 anchors take m1, view-1 anchors v2'; the denominators
    keep the unmasked features."""
    feats = torch.cat([V1, V2]).requires_grad_(True)
    pos = torch.cat([M1, M2]).requires_grad_(True)
    ours = contrastive_loss(feats, T, BT, positives=pos)
    ours.backward()
    f_ref = stacked(V1, V2).requires_grad_(True)
    p_ref = stacked(M1, M2).requires_grad_(True)
    ref = released_supcon(f_ref, features_positive=p_ref)
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)
    torch.testing.assert_close(feats.grad, torch.cat([f_ref.grad[:, 0], f_ref.grad[:, 1]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(pos.grad, torch.cat([p_ref.grad[:, 0], p_ref.grad[:, 1]]), atol=1e-6, rtol=0)
    # view-2 anchor i takes m1_i as its positive, so the masked features get a gradient
    assert pos.grad[:B].abs().sum() > 0 and ours.item() != pytest.approx(
        contrastive_loss(torch.cat([V1, V2]), T, BT).item(), abs=1e-3)


def released_cam(acts, grads, h, w):
    """datautil.py layer_salient_maps: sum_c A * ReLU(G) per layer, min-max over the batch tensor, resized, summed."""
    cam = torch.zeros(1, acts[0].shape[0], h, w)
    for activations, gradients in zip(acts, grads):
        cam_layer = torch.sum(activations * F.relu(gradients), dim=1).unsqueeze(0)
        norm = (cam_layer - cam_layer.min()).div(cam_layer.max() - cam_layer.min() + 1e-8)
        cam = cam + F.interpolate(norm, size=(h, w), mode="bilinear", align_corners=False)
    return torch.squeeze(cam)


def released_bbox(img_h, img_w, lam, activation):
    """datautil.py rand_bbox with an activation map of the image's size (down_ratio 1)."""
    ratio = np.sqrt(1 - lam)
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    cy, cx = np.unravel_index(np.argmax(activation, axis=None), activation.shape)
    yl, yh = np.clip(cy - cut_h // 2, 0, img_h).item(), np.clip(cy + cut_h // 2, 0, img_h).item()
    xl, xh = np.clip(cx - cut_w // 2, 0, img_w).item(), np.clip(cx + cut_w // 2, 0, img_w).item()
    return yl, yh, xl, xh, cut_h * cut_w


@pytest.mark.parametrize("seed", range(6))
def test_cam_box_size_and_placement_are_the_released_ones(seed):
    """LayerCAM over two layers, then for every view-1 image the noise box of salient_cutmix: lam' = 0.5 + 0.4 lam,
    placed at the CAM maximum, clipped, lam_eff from the unclipped box; the noise is U(0, 1) after normalisation,
    one value for all channels."""
    gen = torch.Generator().manual_seed(seed)
    b, h, w = 6, 32, 32
    acts = [torch.randn(2 * b, 8, 8, 8, generator=gen), torch.randn(2 * b, 16, 4, 4, generator=gen)]
    grads = [torch.randn(a.shape, generator=gen) for a in acts]
    cam = layercam(acts, grads, (h, w))
    torch.testing.assert_close(cam, released_cam(acts, grads, h, w), atol=1e-6, rtol=0)
    lam = step_lam(seed)
    box_hw, lam_eff = released_box(lam, h, w)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    x = torch.full((b, 3, h, w), -1.0)
    peaks = cam_peaks(cam[:b])
    peaks[0] = torch.tensor([0, w - 1])  # a corner: the box is clipped
    out = noise_box(x, peaks, box_hw, seed, (mean, std))
    for i in range(b):
        act = cam[i].numpy().copy()
        if i == 0:
            act[:] = 0
            act[0, w - 1] = 1
        yl, yh, xl, xh, area = released_bbox(h, w, lam * (0.9 - 0.5) + 0.5, act)
        expected = torch.zeros(h, w, dtype=torch.bool)
        expected[yl:yh, xl:xh] = True
        assert torch.equal(out[i, 0] != -1.0, expected), i
        assert lam_eff == pytest.approx(1.0 - area / h / w, abs=1e-12)
        u = ((out[i] - mean[0]) / std[0])[:, expected]
        assert float(u.min()) >= -1e-6 and float(u.max()) < 1 + 1e-6
        torch.testing.assert_close(u[0], u[1], atol=1e-6, rtol=0)


def released_knn_logits(testing_features, sorted_exemplar_features, k):
    """main_testing.py KNN_logits: per class the sum of the top-K cosines, normalised over the classes."""
    out = []
    for testing_feature in testing_features:
        similarity_logits = []
        for training_features_c in sorted_exemplar_features:
            training_features_c = np.array(training_features_c, dtype=float)
            similarities = (np.matmul(training_features_c, testing_feature)
                            / np.linalg.norm(training_features_c, axis=1) / np.linalg.norm(testing_feature))
            ind = np.argsort(similarities)[-k:]
            similarity_logits.append(np.sum(similarities[ind]))
        out.append(similarity_logits)
    out = np.array(out)
    return np.divide(out.T, np.sum(out, axis=1)).T


def test_knn_score_and_knn_head_are_the_released_knn_classifier():
    """The `knn` score is max_c of KNN_logits and the kNN head's logits are KNN_logits (argmax: KNN_classifier)."""
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(60, 16, generator=gen) + 2.0  # positive similarities, as trained features have
    labels = torch.arange(60) % 4
    test = torch.randn(25, 16, generator=gen) + 2.0
    ref = released_knn_logits(test.double().numpy(), [train[labels == c].double().numpy() for c in range(4)], 3)
    score = SCORES["knn"](torch.zeros(25, 4), test, bank_of(train, labels), k=3)
    np.testing.assert_allclose(score.numpy(), ref.max(1), atol=1e-6, rtol=0)
    head = KnnHead(16, 4, 60, 3)
    head.bank.copy_(F.normalize(train, dim=1))
    head.bank_labels.copy_(labels)
    np.testing.assert_allclose(head(test).numpy(), ref, atol=1e-6, rtol=0)
    assert np.array_equal(head(test).argmax(1).numpy(), ref.argmax(1))


def test_batched_colour_operations_are_torchvisions_image_by_image():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(5, 3, 8, 8, generator=gen)
    factors = {"brightness": [0.6, 0.9, 1.0, 1.2, 1.4], "contrast": [0.6, 0.8, 1.0, 1.3, 1.4],
               "saturation": [0.6, 0.7, 1.0, 1.1, 1.4], "hue": [-0.1, -0.05, 0.0, 0.03, 0.1]}
    for op in COLOUR_OPS:
        f = torch.tensor(factors[op.__name__])
        ours = op(x, f)
        ref = torch.stack([getattr(TF, f"adjust_{op.__name__}")(x[i], float(f[i])) for i in range(5)])
        torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0, msg=op.__name__)


def test_crops_follow_random_resized_crop_and_resize_exactly_at_full_size():
    gen = torch.Generator().manual_seed(2)
    box = crop_boxes(1000, 32, 32, gen)
    area = box[:, 2] * box[:, 3] / 32**2
    aspect = box[:, 3] / box[:, 2]
    assert (box[:, :2] >= 0).all() and (box[:, 0] + box[:, 2] <= 32).all() and (box[:, 1] + box[:, 3] <= 32).all()
    assert area.min() >= 0.15 and area.max() <= 1.0 and aspect.min() >= 0.6 and aspect.max() <= 1.6
    x = torch.rand(2, 3, 32, 32, generator=gen)
    full = torch.tensor([[0, 0, 32, 32]] * 2)
    torch.testing.assert_close(resized_crop(x, full, torch.tensor([False, True])),
                               torch.stack([x[0], TF.horizontal_flip(x[1])]), atol=1e-6, rtol=0)


def test_two_views_are_seeded_and_differ():
    x = torch.randint(0, 256, (8, 3, 32, 32), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    a, b = two_views(x, 7), two_views(x, 7)
    assert a.shape == (16, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a[:8], a[8:])
    assert not torch.equal(a, two_views(x, 8)) and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert two_views(x[:, :1], 7).shape == (16, 1, 32, 32)  # one channel: no saturation, hue or grayscale


def test_prob_one_masks_every_step():
    plan = make_plan(256, 8, 3, 0, "gradmix", 1.0, (32, 32))
    assert plan["mixed"].all()


@needs_mirror
@pytest.mark.slow
def test_contrastive_gradmix_teacher_runs_through_dvc_repro(tmp_path):
    """`teacher.loss=gradmix_con`: a kNN-head teacher whose accuracy is kNN accuracy and whose MLS is the kNN score
    on its projection features (so both give the same AUROC), through every stage."""
    proj = make_project(tmp_path / "proj", overrides=["teacher.loss=gradmix_con", "distill.method=ce",
                                                      "augment.method=none"])
    sh(["dvc", "repro"], proj)
    m = stage_report(proj, "evaluate", "metrics.json")
    assert m["info"]["teacher_loss"] == "gradmix_con"
    teacher = m["teacher"]["test"]
    assert 0.0 <= teacher["acc"] <= 1.0 and 0.0 <= teacher["knn"]["auroc"] <= 1.0
    assert teacher["mls"]["auroc"] == pytest.approx(teacher["knn"]["auroc"], abs=1e-9)
    history = json.loads((proj / "reports/plots/history/teacher.json").read_text())
    assert all(np.isfinite(row["loss"]) for row in history) and history[-1]["val_acc"] is not None
    from osr.io import load_torch
    meta = load_torch(proj / "data/teacher/model.pt")["meta"]
    assert (meta["head"], meta["projection"], meta["knn_k"]) == ("knn", 128, 3)


def test_check_params_accepts_the_contrastive_losses_and_names_a_bad_setting():
    import copy

    import yaml

    from conftest import ROOT
    from osr import OSRError
    from osr.config import validate
    from osr.teacher import _contrastive_run

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for loss in ("supcon", "gradmix_con", "noisebox_con"):
        validate({**params, "teacher": {**params["teacher"], "loss": loss}})
    for key, value, message in [("teacher.loss", "gradmix", "teacher.loss must be one of"),
                                ("contrastive.temperature", 0.0, "contrastive.temperature must be > 0"),
                                ("contrastive.projection", 0, "contrastive.projection must be >= 1")]:
        bad = copy.deepcopy(params)
        section, name = key.split(".")
        bad[section][name] = value
        with pytest.raises(OSRError, match=message):
            validate(bad)
    noisy = {**params, "teacher": {**params["teacher"], "loss": "gradmix_con", "noise_exposure": 1.0}}
    with pytest.raises(OSRError, match="teacher.noise_exposure: not combined with the contrastive"):
        _contrastive_run(validate(noisy), torch.zeros(4, 3, 32, 32, dtype=torch.uint8),
                         torch.zeros(4, dtype=torch.long))
