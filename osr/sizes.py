"""What a benchmark's declared sizes decide about params.yaml before any data is read (the check_params stage runs
it, so a refused value fails before DVC deletes any output): batch sizes against the training images of the split,
`evaluate.knn_k` against its smallest class, `data.image_size` and the channels of `data.mean`/`data.std` against
its images. Apart from osr.config, so that the stages reading params.yaml do not depend on the data code."""
from osr import OSRError
from osr.config import PARAMS_FILE, Params
from osr.data import BENCHMARKS
from osr.split import train_class_sizes


def check_sizes(params: Params, source: str = PARAMS_FILE) -> None:
    check_image_shape(params, source)
    check_split_sizes(params, source)


def check_image_shape(params: Params, source: str = PARAMS_FILE) -> None:
    """`data.image_size` and the per-channel `data.mean`/`data.std` against the benchmark's declared images."""
    d = params.data
    shape = BENCHMARKS[d.benchmark].image_shape
    if not shape:
        return
    if d.image_size > min(shape[:2]):
        raise OSRError(f"{source}: data.image_size must be <= {min(shape[:2])}, the size of {d.benchmark}'s "
                       f"images (0 keeps them as they are) (got {d.image_size})")
    for key, values in (("data.mean", d.mean), ("data.std", d.std)):
        if len(values) != shape[2]:
            raise OSRError(f"{source}: {key} must hold {shape[2]} values, one per channel of {d.benchmark}'s "
                           f"images (got {values})")


def check_split_sizes(params: Params, source: str = PARAMS_FILE) -> None:
    """What the benchmark's declared class sizes decide before any data is read: every batch fits the training images
    the split will hold (an epoch drops its last partial batch; a batch larger than the set has no step), and
    `evaluate.knn_k` fits the smallest known class (each class's score sums its top k cosines)."""
    name, s, e = params.data.benchmark, params.split, params.evaluate
    bench = BENCHMARKS[name]
    if not bench.train_sizes:
        return
    try:
        train = train_class_sizes(dict(enumerate(bench.train_sizes)), list(bench.known[s.index]), s.val_fraction,
                                  params.base.seed, s.train_per_class)
    except OSRError as err:
        raise OSRError(f"{source}: {err}") from None
    where = f"{name} split {s.index} (split.train_per_class {s.train_per_class}, " \
            f"split.val_fraction {s.val_fraction})"
    for role in ("teacher", "student"):
        batch = getattr(params, role).batch_size
        if batch > sum(train.values()):
            raise OSRError(f"{source}: {role}.batch_size must be <= {sum(train.values())}, the training images of "
                           f"{where} (got {batch})")
    if ("knn" in e.scores or e.deploy_score == "knn") and e.knn_k > min(train.values()):
        raise OSRError(f"{source}: evaluate.knn_k must be <= {min(train.values())}, the training images of the "
                       f"smallest known class of {where} (got {e.knn_k})")
