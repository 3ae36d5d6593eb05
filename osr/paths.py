"""Where the pipeline's DVC outputs live, relative to the project root (stages and the tuning flow share them)."""
from pathlib import Path

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
TUNE_DIR = Path("data/tune")
REPORTS = Path("reports")
PLAN_KEYS = ("order", "aug_seed", "mixed", "partner", "lam", "box", "method")
