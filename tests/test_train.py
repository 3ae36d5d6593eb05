"""The training loop's CUDA-path defects, reproduced on the CPU: resume onto another device, corrupt checkpoints,
divergence, fp32 cosine logits under autocast, determinism flags, device-independent views, GradMix compiled."""
import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT
from osr import OSRError
from osr.augment import BaseAug
from osr.config import load_params
from osr.io import load_torch, save_torch
from osr.models import CosineHead, build, init_source, load_init, model_meta
from osr.objectives import masked, on_logits
from osr.train import (
    budget_epochs,
    compile_backend,
    every_epochs,
    fit,
    native_bf16,
    precision,
    predict,
    set_determinism,
)

PARAMS = load_params(ROOT / "params.yaml")
OPTIM = PARAMS.student


def tiny_model(head: str = "linear", device: str = "cpu"):
    torch.manual_seed(0)
    m = build(**model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3, head=head, scale=8.0))
    return m.to(device, memory_format=torch.channels_last)


def batches_of(scale: float = 1.0, stop_at: int | None = None):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 3, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g)

    def batches(epoch):
        if epoch == stop_at:
            raise KeyboardInterrupt  # a kill in the middle of the run
        for s in range(2):
            sl = slice(8 * s, 8 * s + 8)
            yield x[sl], on_logits(lambda z, yy=y[sl]: scale * F.cross_entropy(z.float(), yy))
    return batches


def train(model, ckpt, epochs=2, device="cpu", scale=1.0, stop_at=None, amp=False, **kw):
    return fit(model, batches_of(scale, stop_at), epochs=epochs, steps_per_epoch=2, batch_size=8, optim=OPTIM,
               ckpt_path=ckpt, fingerprint="fp", desc="t", device=torch.device(device), amp=amp, **kw)


@pytest.mark.filterwarnings("ignore:.*meta parameter")
def test_resume_reads_the_cpu_checkpoint_onto_another_device(tmp_path):
    """The saved CPU RNG state must stay on the CPU (map_location=device made set_rng_state raise)."""
    ckpt = tmp_path / "ck.pt"
    history = train(tiny_model(), ckpt)
    assert load_torch(ckpt)["rng_cpu"].device.type == "cpu"
    resumed = train(tiny_model(device="meta"), ckpt, device="meta")  # both epochs done: resume only
    assert resumed == history


def test_a_checkpoint_of_the_other_precision_is_not_resumed(tmp_path, capsys):
    """`amp: auto` resolves per machine, so the fingerprint holds the resolved precision, not the setting."""
    ckpt = tmp_path / "ck.pt"
    train(tiny_model(), ckpt)
    train(tiny_model(), ckpt)
    assert "resuming" in capsys.readouterr().out  # same precision: the finished run is resumed, nothing retrained
    train(tiny_model(), ckpt, amp=True)
    assert "resuming" not in capsys.readouterr().out
    assert load_torch(ckpt)["fingerprint"] == "fp bf16"


def test_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path):
    ref = tiny_model()
    train(ref, tmp_path / "a.pt", epochs=3)

    def stop(model, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return {}
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), tmp_path / "b.pt", epochs=3, on_epoch_end=stop)
    assert load_torch(tmp_path / "b.pt")["epoch"] == 0
    again = tiny_model()
    train(again, tmp_path / "b.pt", epochs=3)
    for a, b in zip(ref.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_unreadable_checkpoint_is_set_aside_and_training_starts_over(tmp_path, capsys, content):
    ckpt = tmp_path / "ck.pt"
    if content is None:  # a readable file that is not a training checkpoint
        torch.save({"model": {}}, ckpt)
    else:
        ckpt.write_bytes(content)
    history = train(tiny_model(), ckpt)
    assert len(history) == 2 and (tmp_path / "ck.pt.corrupt").exists()
    assert load_torch(ckpt)["epoch"] == 1
    warning = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(warning) == 1 and "ck.pt.corrupt" in warning[0] and "starts over" in warning[0]
    assert "weights_only" not in warning[0]


def test_unsafe_checkpoint_message_never_suggests_unsafe_loading(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"cfg": OPTIM}, path)  # a pickled class: refused by weights_only loading
    with pytest.raises(OSRError) as e:
        load_torch(path)
    assert "weights_only" not in str(e.value) and "refusing" in str(e.value)


@pytest.mark.parametrize("scale,fragment", [(float("nan"), "nan"), (1e9, "limit")])
def test_diverging_loss_stops_training_with_one_line_error(tmp_path, scale, fragment):
    with pytest.raises(OSRError) as e:
        train(tiny_model(), tmp_path / "ck.pt", scale=scale)
    msg = str(e.value)
    assert "\n" not in msg and "epoch 1" in msg and fragment in msg
    assert not (tmp_path / "ck.pt").exists()  # nothing diverged is checkpointed


def test_a_stage_whose_training_diverges_exits_1_with_one_line(tmp_path, capsys):
    from stages.common import run
    with pytest.raises(SystemExit) as e:
        run(lambda p: train(tiny_model(), tmp_path / "ck.pt", scale=1e9), argv=[])  # as distill.tau: 1e9 (loss ~ tau^2)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and len(err) == 1 and err[0].startswith("error: t: training diverged in epoch 1")


def test_cosine_head_logits_are_fp32_under_bf16_autocast():
    head = CosineHead(16, 4, 32.0)
    f = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = head(f.bfloat16())
        z_model = tiny_model("cosine")(torch.rand(2, 3, 8, 8))
    assert z.dtype == torch.float32 and z_model.dtype == torch.float32
    assert torch.allclose(z, head(f.bfloat16().float()), atol=1e-5)


def test_determinism_turns_cudnn_autotuning_off():
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        set_determinism(0, torch.device("cuda"))  # only sets flags: no GPU needed
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        set_determinism(0, torch.device("cuda"), deterministic=False)
        assert torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


def test_views_are_drawn_on_the_cpu_whatever_the_data_device():
    """A device generator made views depend on the device; meta has no generator at all, so this ran only on CPU."""
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    aug = BaseAug(randaugment=9)
    assert torch.equal(aug(x, 5), aug(x, 5)) and not torch.equal(aug(x, 5), aug(x, 6))
    assert aug(x.to("meta"), 5).shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_views_match_between_cpu_and_cuda():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(BaseAug(randaugment=0)(x, 3), BaseAug(randaugment=0)(x.cuda(), 3).cpu())


def test_gradmix_under_compile_matches_eager():
    """aot_eager reproduces the compiled failure ("differentiated Tensor ... not used in the graph") quickly."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(4, 3, 16, 16, generator=g), torch.tensor([0, 1, 2, 0])
    obj = masked("gradmix", y, (6, 6), 0.8, 3, ["layer2", "layer3"], lambda z: F.cross_entropy(z, y),
                 lambda z, x_m: F.cross_entropy(z, y))
    eager_model = tiny_model()
    compiled_model = copy.deepcopy(eager_model)
    losses, grads = [], []
    compiled = torch.compile(compiled_model, backend="aot_eager")
    for model, fwd in ((eager_model, eager_model), (compiled_model, compiled)):
        loss = obj(fwd, x)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad for p in model.parameters()])
    assert torch.allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_fit_matches_eager_and_its_checkpoint_loads_into_a_plain_model(tmp_path, backend):
    """aot_eager: the same graph capture in seconds; inductor (CUDA's backend) compiles ~1 min on 2 cores."""
    eager, compiled = tiny_model(), tiny_model()
    h_eager = train(eager, tmp_path / "a.pt")
    h_comp = train(compiled, tmp_path / "b.pt", compile=backend)
    assert compiled.compiled and not eager.compiled
    assert h_comp[-1]["loss"] == pytest.approx(h_eager[-1]["loss"], rel=1e-4)
    for a, b in zip(eager.state_dict().values(), compiled.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-5)
    plain = tiny_model()
    plain.load_state_dict(load_torch(tmp_path / "b.pt")["model"])  # strict: the keys are the plain model's
    x = torch.randint(0, 256, (11, 3, 8, 8), dtype=torch.uint8)  # a partial last batch: padded when compiled
    assert torch.allclose(predict(compiled, x, batch_size=4), predict(plain, x, batch_size=4), atol=1e-5)


def test_compile_defaults_keep_the_cpu_eager():
    assert compile_backend("auto", torch.device("cpu")) is None
    assert compile_backend("auto", torch.device("cuda")) == "inductor"
    assert compile_backend("off", torch.device("cuda")) is None
    with pytest.raises(OSRError, match="compile: unknown setting"):
        compile_backend("fast", torch.device("cpu"))


def test_amp_auto_trains_in_bf16_only_where_the_cpu_computes_it(monkeypatch):
    cpu = torch.device("cpu")
    assert precision(True, cpu) == "bf16" and precision(False, cpu) == "fp32"
    assert precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")  # this machine, whichever it is
    for flag in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # the hardware answer, either way
        monkeypatch.setattr(torch.cpu, flag, lambda: False)
    assert not native_bf16(cpu) and precision("auto", cpu) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert native_bf16(cpu) and precision("auto", cpu) == "bf16"


def test_checkpoint_every_k_epochs_still_resumes_to_the_same_weights(tmp_path):
    assert every_epochs("auto", 200) == 10 and every_epochs("auto", 8) == 1 and every_epochs(3, 8) == 3
    calls = []

    def record(model, epoch):
        calls.append(epoch + 1)
        return {"val": 1.0}
    ref = tiny_model()
    history = train(ref, tmp_path / "a.pt", epochs=5, on_epoch_end=record, checkpoint_every=2)
    assert calls == [2, 4, 5] and ["val" in h for h in history] == [False, True, False, True, True]
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), tmp_path / "b.pt", epochs=5, checkpoint_every=2, stop_at=3)
    assert load_torch(tmp_path / "b.pt")["epoch"] == 1  # the epoch-3 progress was not checkpointed
    again = tiny_model()
    assert train(again, tmp_path / "b.pt", epochs=5, checkpoint_every=2)[-1]["loss"] == history[-1]["loss"]
    for a, b in zip(ref.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_keep_best_ends_with_the_best_validated_weights_and_resumes_to_them(tmp_path):
    """The epoch of highest val_acc is kept, not the last; a run resumed after it still ends with those weights."""
    scores = {0: 0.5, 1: 0.9, 2: 0.7}
    snapshots = {}

    def validate(model, epoch):
        snapshots[epoch] = copy.deepcopy(model.state_dict())
        return {"val_acc": scores[epoch]}
    model = tiny_model()
    history = train(model, tmp_path / "ck.pt", epochs=3, on_epoch_end=validate, keep_best=True)
    assert history[-1]["kept_epoch"] == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k])
    again = tiny_model()
    train(again, tmp_path / "ck.pt", epochs=3, on_epoch_end=validate, keep_best=True)  # all done: resume only
    for k, v in again.state_dict().items():
        assert torch.equal(v, snapshots[1][k])
    with pytest.raises(OSRError, match="keep best needs a validation callback"):
        train(tiny_model(), tmp_path / "other.pt", keep_best=True)


def test_min_steps_raises_the_epochs_of_small_data_only():
    section = replace(PARAMS.student, epochs=6, batch_size=128, min_steps=1000)
    assert budget_epochs(section, 900) == 143  # 7 steps an epoch
    assert budget_epochs(section, 24_300) == 6  # 189 steps an epoch: 6 epochs are already 1134 steps
    assert budget_epochs(replace(section, min_steps=0), 900) == 6


def test_flip_tta_makes_an_eval_model_mirror_invariant_and_leaves_training_alone():
    model = build(**model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3, flip_tta=True)).eval()
    x = torch.rand(4, 3, 16, 16)
    torch.testing.assert_close(model(x), model(x.flip(3)), rtol=1e-4, atol=1e-5)
    plain = build(**model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3))
    assert "flip_tta" not in model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3)
    plain.load_state_dict(model.state_dict())
    model.train(), plain.train()
    torch.testing.assert_close(model(x), plain(x))


def test_init_copies_an_imagenet_checkpoint_where_it_fits_and_keeps_the_data_normalisation(tmp_path):
    """A torchvision ImageNet ResNet-18 state dict (saved here: no download) into a width-64 CIFAR-stem model: the
    blocks are copied, the 7x7 stem and the 1000-class head stay fresh, the model's own mean/std stay."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    ref = resnet18(weights=None)
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, tmp_path / "resnet18.pth")  # DataParallel
    model = build(**model_meta("resnet18", 6, 64, 3, (0.4,) * 3, (0.2,) * 3))
    line = load_init(model, tmp_path / "resnet18.pth", "teacher")
    assert torch.equal(model.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)
    assert torch.equal(model.bn1.running_var, ref.bn1.running_var)
    assert line.startswith(f"teacher: initialised 99 tensors from {tmp_path / 'resnet18.pth'}; 3 left fresh (conv1")
    assert torch.allclose(model.mean, torch.full((1, 3, 1, 1), 0.4))
    with pytest.raises(OSRError, match=r"student.init: .*resnet18.pth: no tensor fits a CifarResNet of this width"):
        load_init(tiny_model(), tmp_path / "resnet18.pth", "student")


def test_init_from_an_earlier_model_file_and_its_refusals(tmp_path):
    source = tiny_model()
    meta = model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3)
    save_torch(tmp_path / "model.pt", {"meta": meta, "state": source.state_dict()})
    torch.manual_seed(1)
    model = build(**meta)
    weights = [k for k in source.state_dict() if k not in ("mean", "std") and not k.endswith("num_batches_tracked")]
    assert load_init(model, tmp_path / "model.pt", "student") == \
        f"student: initialised {len(weights)} tensors from {tmp_path / 'model.pt'}"
    for k in weights:
        assert torch.equal(model.state_dict()[k], source.state_dict()[k])
    assert init_source("", tmp_path / "t.pt", "teacher") is None
    assert init_source("teacher", tmp_path / "model.pt", "student") == tmp_path / "model.pt"
    with pytest.raises(OSRError, match="teacher.init: 'teacher' names the run's teacher, a source for the student"):
        init_source("teacher", tmp_path / "model.pt", "teacher")
    with pytest.raises(OSRError, match=f"student.init: {tmp_path / 'none.pt'}: file not found"):
        init_source(str(tmp_path / "none.pt"), tmp_path / "model.pt", "student")


def test_noise_exposure_adds_noise_images_whose_softmax_is_pulled_to_uniform():
    from osr.losses import STEP_LOSSES
    from osr.objectives import NOISE_SHARE
    from osr.teacher import teacher_batches

    cfg = PARAMS
    x, y = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8), torch.randint(0, 3, (64,))
    plain = list(teacher_batches(x, y, 0, 1, 32, BaseAug(0), STEP_LOSSES["ce"], cfg, noise=0.0))
    noisy = list(teacher_batches(x, y, 0, 1, 32, BaseAug(0), STEP_LOSSES["ce"], cfg, noise=2.0))
    assert [len(v) for v, _ in plain] == [32, 32] and [len(v) for v, _ in noisy] == [32 + 32 // NOISE_SHARE] * 2
    assert torch.equal(noisy[0][0][:32], plain[0][0])  # the same known views, noise appended
    model = tiny_model().eval()  # batch-norm by running statistics: the known rows' logits do not see the noise
    z = model(noisy[0][0])
    uniform = -F.log_softmax(z[32:].float(), 1).mean()
    torch.testing.assert_close(noisy[0][1](model, noisy[0][0]) - plain[0][1](model, plain[0][0]), 2.0 * uniform,
                               rtol=1e-4, atol=1e-4)
