"""Hyper-parameter tuning of the asymmetric-distillation student on the validation role only.

One trial = the `distill` stage re-run in-process for one point of a search space (``SearchSpace``, read from a
YAML file such as conf/search/asym.yaml: the params.yaml keys it tunes, their ranges, and the keys every trial
fixes): the selective-relabel targets are recomputed from the **cached** teacher logits (``relabel_targets``; the
teacher is never retrained and never run forward), the student is trained with ``fit`` + ``student_batches``, and
two numbers are measured, both **without the test role**:

* ``val_acc``: closed-set accuracy on the manifest's ``val`` rows (held out of the training images);
* ``proxy_auroc``: open-set AUROC of the MLS score (max logit), known = the ``val`` images, unknown = a *proxy*
  set drawn from a source disjoint from every test class (known and unknown) of the benchmark.

Proxy unknowns per benchmark (``proxy_source``):

* ``cifar10``, ``cifar_plus10``, ``cifar_plus50``: Tiny-ImageNet **val** images (mirror ``tinyimagenet_osr.npz``)
  of the wnids whose names (``words_sorted``) name none of the test classes: the CIFAR-10 classes plus a
  conservative synonym list (dog breeds, big cats, boats, vans, ...) and, for CIFAR+N, every CIFAR-100 fine
  class in ``data/raw`` (phrase match, or a word ending in the class name: "bullfrog" names a frog).
  Resized 64 -> 32 with ``interpolate(antialias=True)``; ``proxy_size`` images (default 500), seeded.
* ``mnist``: the same Tiny-ImageNet pool (no digits), converted to grey and resized to 28x28.
* ``tinyimagenet``: no disjoint source in the mirror (every other file overlaps its 200 classes), so tuning
  refuses with an OSRError rather than leak test classes; nor for ``svhn`` and ``folder`` (the user's classes,
  which no fixed source is known to avoid). Each entry of ``osr.data.BENCHMARKS`` declares its source.

Only the rows of role ``train`` and ``val`` are read from the manifest and only ``x_train``/``y_train`` from
``data/raw/dataset.npz`` (val rows come from the training source); ``x_test`` is never loaded. Each result
records the roles and sample ids it was measured on, so a test can check that claim.

A trial writes only below its own folder ``trial_dir`` (the student checkpoint, ``result.json``).
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from osr import OSRError
from osr.config import Params, load_params, read_yaml, validate
from osr.data import BENCHMARKS, decode_jpegs, fetch
from osr.distill import train_student
from osr.io import load_npz, write_json
from osr.metrics import accuracy, open_set_metrics
from osr.models import init_source
from osr.paths import CACHE, MANIFEST, PLAN, PLAN_KEYS, RAW, TEACHER, TUNE_DIR
from osr.relabel import relabel_stats, relabel_targets
from osr.roles import SplitTensors, read_manifest
from osr.scores import mls
from osr.train import predict, resolve_device, set_determinism

EVAL_ROLES = ("val",)

# Words that name a CIFAR-10 class in Tiny-ImageNet's vocabulary (conservative: excluding too much only
# shrinks the pool).
CIFAR10_SYNONYMS = {
    "airplane": ["airplane", "aeroplane", "plane", "airliner", "aircraft", "jet"],
    "automobile": ["automobile", "car", "convertible", "limousine", "limo", "wagon", "waggon", "cab", "jeep",
                   "minivan", "kart", "taxi"],
    "bird": ["bird", "goose", "stork", "penguin", "albatross", "flamingo", "ostrich", "duck", "hen"],
    "cat": ["cat", "tabby", "kitten", "cougar", "puma", "lion", "panther", "tiger", "leopard"],
    "deer": ["deer", "elk", "moose", "antelope", "gazelle"],
    "dog": ["dog", "chihuahua", "terrier", "retriever", "shepherd", "poodle", "hound", "spaniel", "collie",
            "alsatian", "puppy"],
    "frog": ["frog", "toad"],
    "horse": ["horse", "pony", "sorrel", "zebra", "foal"],
    "ship": ["ship", "boat", "liner", "schooner", "gondola", "yacht", "canoe", "ferry"],
    "truck": ["truck", "van", "lorry", "tractor", "trailer", "pickup"],
}


@dataclass
class TuneData:
    """Everything a trial reads, loaded once per flow run (train/val tensors, plan, cached teacher logits)."""
    params: Params
    device: torch.device
    data: SplitTensors
    plan: dict[str, np.ndarray]
    t_raw: np.ndarray
    t_mixed: np.ndarray
    y_plan: np.ndarray
    val_ids: np.ndarray          # manifest sample_id of each val image, in tensor order
    roles_loaded: list[str]
    proxy: torch.Tensor          # uint8 [N, C, H, W] proxy unknowns
    proxy_info: dict
    init: Path | None            # the checkpoint a trial's student starts from (student.init), as in the pipeline


# ------------------------------------------------------------------------------------------ search space

@dataclass(frozen=True)
class Tuned:
    """One tuned parameter: the params.yaml `key` a trial sets, drawn by Optuna from [low, high] (log scale if
    `log`) under the space's name for it."""
    key: str
    low: float
    high: float
    log: bool = False  # the YAML's `log:` is optional: a uniform draw unless it says otherwise


@dataclass(frozen=True)
class SearchSpace:
    """A search space file: `tuned` (Optuna name -> `Tuned`) and `fixed` (params.yaml key -> the value every
    trial sets)."""
    tuned: dict[str, Tuned]
    fixed: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> SearchSpace:
        raw = read_yaml(path)
        try:
            tuned = {name: Tuned(**entry) for name, entry in raw["tuned"].items()}
            fixed = dict(raw.get("fixed") or {})
        except (KeyError, TypeError, AttributeError) as e:
            raise OSRError(f"{path}: not a search space of `tuned` {{name: {{key, low, high, log}}}} and `fixed` "
                           f"{{key: value}} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        bad = [name for name, t in tuned.items() if not (isinstance(t.key, str) and "." in t.key and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (t.low, t.high)) and t.low < t.high)]
        if bad or not tuned:
            raise OSRError(f"{path}: tuned {bad or 'is empty'}: each needs a section.name key and numbers low < high")
        return cls(tuned, fixed)

    def keys(self) -> list[str]:
        """The params.yaml keys a trial sets, the tuned ones first."""
        return [*(t.key for t in self.tuned.values()), *self.fixed]

    def settings(self, values: dict[str, float]) -> dict[str, Any]:
        """The params.yaml keys a trial of Optuna `values` (name -> value) sets: the tuned ones as floats (a
        draw that happens to be whole stays a float), then the fixed ones."""
        return {**{t.key: float(values[name]) for name, t in self.tuned.items()}, **self.fixed}


def trial_params(params: Params, settings: dict[str, Any]) -> Params:
    """`params` with each dotted key of `settings` set, checked as params.yaml is: what a trial trains with."""
    cfg = asdict(params)
    for key, value in settings.items():
        section, name = key.split(".")
        cfg[section][name] = value
    return validate(cfg, "the trial's settings")


# ------------------------------------------------------------------------------------------ proxy unknowns

def _keywords(class_names: list[str]) -> list[str]:
    words = []
    for name in class_names:
        words += CIFAR10_SYNONYMS.get(name, [name.replace("_", " ").lower()])
    return words


def names_a_class(words: str, keywords: list[str]) -> bool:
    """True if a Tiny-ImageNet name mentions a keyword: a phrase match, or a word ending in a one-word keyword."""
    text = " " + " ".join(re.findall(r"[a-z]+", words.lower())) + " "
    tokens = text.split()
    for kw in keywords:
        if " " in kw:
            if f" {kw} " in text:
                return True
        elif any(t.endswith(kw) for t in tokens):
            return True
    return False


def proxy_source(benchmark: str) -> str:
    """The benchmark's proxy-unknown source (declared on its `BENCHMARKS` entry)."""
    source = BENCHMARKS[benchmark].proxy
    if source is None:
        raise OSRError(f"tuning: no proxy-unknown source disjoint from the test classes of {benchmark!r} "
                       f"(supported: {', '.join(n for n, b in BENCHMARKS.items() if b.proxy)})")
    return source


def proxy_unknowns(benchmark: str, test_class_names: list[str], size: int, shape: tuple[int, int, int],
                   seed: int, workdir: Path) -> tuple[np.ndarray, dict]:
    """`size` uint8 images [N, H, W, C] from Tiny-ImageNet val whose classes name no test class, and a record."""
    proxy_source(benchmark)
    tin, prov = fetch("tinyimagenet", workdir)
    words = [str(w) for w in tin["words_sorted"]]
    keywords = _keywords(test_class_names) if BENCHMARKS[benchmark].proxy_keywords else []
    allowed = np.asarray([not names_a_class(w, keywords) for w in words])
    pool = np.flatnonzero(allowed[tin["y_val"].astype(np.int64)])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(pool, min(size, len(pool)), replace=False))
    off = tin["off_val"]
    blobs = [tin["jpeg_val"][off[i]:off[i + 1]] for i in pick]
    new_off = np.r_[0, np.cumsum([len(b) for b in blobs])].astype(np.int64)
    x = decode_jpegs(np.concatenate(blobs), new_off) if len(pick) else np.zeros((0, 64, 64, 3), np.uint8)
    h, w, c = shape
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    if c == 1:
        t = (0.299 * t[:, :1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3])
    t = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    out = t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    excluded = sorted(str(tin["wnids_sorted"][i]) for i in np.flatnonzero(~allowed))
    return out, {"source": "tinyimagenet-val", "file": prov["file"], "sha256": prov["sha256"], "n": int(len(pick)),
                 "classes_allowed": int(allowed.sum()), "classes_excluded": excluded, "seed": seed}


# ------------------------------------------------------------------------------------------ loading

def load_tune_data(project: str | Path, proxy_size: int = 500, proxy_seed: int = 0) -> TuneData:
    """Read the pipeline's DVC outputs (train/val only) and build the proxy unknowns."""
    project = Path(project)
    p = load_params(project / "params.yaml")
    device = resolve_device(p.base.device)
    cache = load_npz(project / CACHE, ("t_raw", "t_mixed"))
    if not cache.get("teacher_pass", True):  # caches written before the marker all hold teacher logits
        raise OSRError(f"{project / CACHE}: no teacher logits (its relabel ran for a distill.method that reads "
                       "none); run `dvc exp run -S distill.method=asym` before tuning")
    manifest = read_manifest(project / MANIFEST)
    used = manifest[manifest.role.isin(("train", "val"))]
    sources = sorted(used.source.unique())
    raw_path = project / RAW
    if not raw_path.is_file():
        raise OSRError(f"{raw_path}: file not found (run `dvc repro` first)")
    with np.load(raw_path, allow_pickle=False) as z:  # x_test is never read
        raw = {f"x_{s}": z[f"x_{s}"] for s in sources}
        class_names = [str(c) for c in z["class_names"]] if "class_names" in z.files else []
    data = SplitTensors.from_arrays(raw, used, device, ("train", "val"))
    val_rows = used[used.role == "val"]
    val_ids = np.concatenate([g["sample_id"].to_numpy() for _, g in val_rows.groupby("source", sort=True)])
    plan = load_npz(project / PLAN, PLAN_KEYS)
    y_plan = data.y["train"].cpu().numpy()[plan["order"]]
    # the test classes (known + unknown) name what the proxy must avoid; read from the manifest labels only
    test_classes = sorted(manifest.loc[manifest.role == "test", "orig_class"].unique().tolist())
    names = [class_names[c] for c in test_classes if c < len(class_names)]
    x_tr = data.x["train"]
    shape = (int(x_tr.shape[2]), int(x_tr.shape[3]), int(x_tr.shape[1]))
    proxy, info = proxy_unknowns(p.data.benchmark, names, proxy_size, shape, proxy_seed,
                                 project / TUNE_DIR)
    info["test_class_names"] = names
    return TuneData(p, device, data, plan, cache["t_raw"], cache["t_mixed"], y_plan, val_ids,
                    sorted(used.role.unique().tolist()),
                    torch.from_numpy(proxy).permute(0, 3, 1, 2).contiguous().to(device), info,
                    init_source(p.student.init, project / TEACHER, "student"))


# ------------------------------------------------------------------------------------------ one trial

def measure(model: torch.nn.Module, td: TuneData) -> dict[str, float]:
    """Closed-set accuracy on val and the proxy AUROC of the MLS score (val knowns vs proxy unknowns), in batches of
    evaluate.batch_size."""
    batch_size = td.params.evaluate.batch_size
    zv = predict(model, td.data.x["val"], batch_size)
    y = td.data.y["val"].cpu().numpy()
    pred = zv.argmax(1).cpu().numpy()
    zp = predict(model, td.proxy, batch_size)
    s_known, s_unknown = mls(zv).cpu().numpy(), mls(zp).cpu().numpy()
    if not (np.isfinite(s_known).all() and np.isfinite(s_unknown).all()):
        raise OSRError("tuning: non-finite logits (training diverged)")
    m = open_set_metrics(s_known, pred == y, s_unknown)
    return {"val_acc": accuracy(y, pred), "proxy_auroc": m["auroc"], "proxy_oscr": m["oscr"]}


def objective_value(metrics: dict, mode: str, acc_weight: float = 0.0) -> float | list[float]:
    """single: proxy AUROC + acc_weight * val accuracy (acc_weight 0: AUROC alone); multi: [acc, AUROC]."""
    if mode == "multi":
        return [metrics["val_acc"], metrics["proxy_auroc"]]
    return metrics["proxy_auroc"] + acc_weight * metrics["val_acc"]


def run_trial(td: TuneData, settings: dict[str, Any], trial_dir: str | Path,
              on_epoch: Callable[[dict, int], None] | None = None) -> dict:
    """Relabel from cached logits, train the student, measure on val + proxy, with the study's params.yaml and
    `settings` (dotted key -> value, `SearchSpace.settings`) set. Writes only under trial_dir.

    on_epoch(metrics, epoch) is called after every epoch (pruning hook; may raise osr.train.Pruned).
    """
    t0 = time.perf_counter()
    trial_dir = Path(trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    p = trial_params(td.params, settings)
    seed, relabel = p.base.seed, p.relabel
    set_determinism(seed, td.device)
    targets = relabel_targets(td.t_mixed, td.y_plan, td.plan, relabel.rule, relabel.threshold, relabel.smoothing)
    cache = {"t_raw": td.t_raw, "t_mixed": td.t_mixed, **targets}

    def epoch_end(m, epoch):
        row = measure(m, td)
        if on_epoch is not None:
            on_epoch(row, epoch)
        return row

    drawn = " ".join(f"{k.split('.')[-1]}={v:.3g}" for k, v in settings.items() if isinstance(v, float))
    _, _, history = train_student(
        td.data, td.plan, cache, p, ckpt_path=trial_dir / "ckpt.pt",
        fingerprint=" ".join(f"{k}={v!r}" for k, v in settings.items()) + f" seed={seed}",
        desc=f"trial[{drawn}]", device=td.device, on_epoch_end=epoch_end, init=td.init)
    final = history[-1]
    for k in ("val_acc", "proxy_auroc"):
        if not math.isfinite(final[k]):
            raise OSRError(f"tuning: {k} is not finite (training diverged)")
    stats = relabel_stats(targets["hard"], td.plan["mixed"], td.t_raw, td.y_plan)
    result = {"settings": settings,
              "val_acc": final["val_acc"], "proxy_auroc": final["proxy_auroc"], "proxy_oscr": final["proxy_oscr"],
              "hard_fraction": stats["hard_fraction"],
              "history": history, "eval_roles": list(EVAL_ROLES), "roles_loaded": td.roles_loaded,
              "n_val": int(len(td.val_ids)), "n_proxy": int(len(td.proxy)), "seconds": time.perf_counter() - t0}
    write_json(trial_dir / "result.json", {**result, "eval_sample_ids": td.val_ids.tolist()})
    return result
