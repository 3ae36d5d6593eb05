"""Where the pipeline's inputs and DVC outputs live, relative to the project root (stages and the tuning flow share
them), and what the outputs call a benchmark."""
import os
from pathlib import Path

MIRROR_ENV = "OSR_DATA_MIRROR"
MIRROR = Path("../shared/datasets")  # the dataset mirror's default folder (README, "Set-up")


def mirror_dir(root: Path = Path()) -> Path:
    """The dataset-mirror folder: $OSR_DATA_MIRROR, else MIRROR; a relative one is taken from `root`, the project
    root (where the stages run; a caller elsewhere passes it)."""
    return root / os.environ.get(MIRROR_ENV, MIRROR)


PARAMS_OK = Path("data/params.ok")  # the check_params stage's stamp: every stage waits for it
RAW = Path("data/raw/dataset.npz")
MANIFEST = Path("data/split/manifest.csv")
PLAN = Path("data/plan/plan.npz")
TEACHER = Path("data/teacher/model.pt")
TEACHER_CKPT = Path("data/ckpt/teacher.pt")  # not a DVC output: survives reruns, guarded by a fingerprint
CACHE = Path("data/teacher_cache/cache.npz")
STUDENT = Path("data/student/model.pt")
STUDENT_CKPT = Path("data/ckpt/student.pt")
SCORES_OUT = Path("data/eval/scores.npz")
EXPORT = Path("data/export")  # the deployable classifier (osr/deploy.py), a DVC model artifact
TUNE_DIR = Path("data/tune")
REPORTS = Path("reports")
PLAN_KEYS = ("order", "aug_seed", "mixed", "partner", "lam", "box", "method")


def benchmark_label(name: str, image_size: int) -> str:
    """The benchmark as reports name it: `tinyimagenet32` is Tiny-ImageNet downsampled to 32 x 32 (its conf file)."""
    return f"{name}{image_size}" if image_size else name
