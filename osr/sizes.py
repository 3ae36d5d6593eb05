"""What a benchmark's declared sizes decide about params.yaml before any data is read (the check_params stage runs
it, so a refused value fails before DVC deletes any output): batch sizes against the training images of the split,
`evaluate.knn_k` against its smallest class, `data.image_size` and the channels of `data.mean`/`data.std` against
its images. Apart from osr.config, so that the stages reading params.yaml do not depend on the data code."""
from osr import OSRError
from osr.config import PARAMS_FILE, get
from osr.data import BENCHMARKS
from osr.split import train_class_sizes


def check_sizes(params: dict, source: str = PARAMS_FILE) -> None:
    check_image_shape(params, source)
    check_split_sizes(params, source)


def check_image_shape(params: dict, source: str = PARAMS_FILE) -> None:
    """`data.image_size` and the per-channel `data.mean`/`data.std` against the benchmark's declared images."""
    d = params["data"]
    shape = BENCHMARKS[d["benchmark"]].image_shape
    if not shape:
        return
    if d["image_size"] > min(shape[:2]):
        raise OSRError(f"{source}: data.image_size must be <= {min(shape[:2])}, the size of {d['benchmark']}'s "
                       f"images (0 keeps them as they are) (got {d['image_size']})")
    for key in ("data.mean", "data.std"):
        if len(get(params, key)) != shape[2]:
            raise OSRError(f"{source}: {key} must hold {shape[2]} values, one per channel of {d['benchmark']}'s "
                           f"images (got {get(params, key)})")


def check_split_sizes(params: dict, source: str = PARAMS_FILE) -> None:
    """What the benchmark's declared class sizes decide before any data is read: every batch fits the training images
    the split will hold (an epoch drops its last partial batch; a batch larger than the set has no step), and
    `evaluate.knn_k` fits the smallest known class (each class's score sums its top k cosines)."""
    name, index = params["data"]["benchmark"], params["split"]["index"]
    bench = BENCHMARKS[name]
    if not bench.train_sizes:
        return
    s = params["split"]
    try:
        train = train_class_sizes(dict(enumerate(bench.train_sizes)), list(bench.known[index]),
                                  float(s["val_fraction"]), params["base"]["seed"], s["train_per_class"])
    except OSRError as e:
        raise OSRError(f"{source}: {e}") from None
    where = f"{name} split {index} (split.train_per_class {s['train_per_class']}, " \
            f"split.val_fraction {s['val_fraction']})"
    for key in ("teacher.batch_size", "student.batch_size"):
        if get(params, key) > sum(train.values()):
            raise OSRError(f"{source}: {key} must be <= {sum(train.values())}, the training images of {where} "
                           f"(got {get(params, key)})")
    knn_read = "knn" in params["evaluate"]["scores"] or params["evaluate"]["deploy_score"] == "knn"
    if knn_read and params["evaluate"]["knn_k"] > min(train.values()):
        raise OSRError(f"{source}: evaluate.knn_k must be <= {min(train.values())}, the training images of the "
                       f"smallest known class of {where} (got {params['evaluate']['knn_k']})")
