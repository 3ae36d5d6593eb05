"""model.onnx: the `osr.graph.Deployed` module as an ONNX graph, and the onnxruntime session that runs it.

The graph holds the normalisation, the network, the score (with a kNN score's feature bank as a constant) and
the class decision at the threshold; its input ``images`` is float32 [batch, C, H, W] in [0, 1] with a dynamic
batch, its outputs are `osr.graph.OUTPUTS`. The card's figures go into the model's ``metadata_props``, each value
as JSON, so the file alone says what its scores mean. Weights are stored inside the one file.

The TorchScript-based exporter (``dynamo=False``) traces the module; it needs `onnx` only (not onnxscript). A
trace records the tensor operations of one call: a score computed outside them (through numpy, or by Python
control flow on values) would be frozen into constants. `write_onnx` therefore runs the graph on a batch of
another size and refuses, in one line, a score whose ONNX answers differ from torch's.
`onnx` and `onnxruntime` are imported by the functions that need them: the rest of `osr` works without them.
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from osr import OSRError
from osr.graph import OUTPUTS, Deployed
from osr.io import atomic_path

OPSET = 17
INPUT = "images"
TOLERANCE = 1e-4  # largest score difference between the ONNX graph and torch that `write_onnx` accepts, relative
                  # to the score's size when above 1 (float32 rounds a large logit by more than 1e-4)


def write_onnx(module: Deployed, path: str | Path, channels: int, size: int, metadata: dict) -> None:
    """Trace `module` (a CPU copy, eval mode) into `path` with `metadata` (JSON values) in metadata_props;
    OSRError when the graph cannot be traced or does not compute the module's score (`TOLERANCE`)."""
    import onnx

    cpu = copy.deepcopy(module).cpu().eval()
    batch = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notices (legacy exporter, traced constants)
        try:
            torch.onnx.export(cpu, (torch.rand(2, channels, size, size),), buf, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT], output_names=list(OUTPUTS),
                              dynamic_axes={n: batch for n in (INPUT, *OUTPUTS)})
        except Exception as e:  # the tracer and the exporter raise many types
            raise OSRError(f"score {module.score_name}: cannot be exported to ONNX "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
    _check_graph(cpu, buf.getvalue(), channels, size)
    graph = onnx.load_from_string(buf.getvalue())
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    with atomic_path(path) as tmp:
        tmp.write_bytes(graph.SerializeToString())


def _check_graph(module: Deployed, graph: bytes, channels: int, size: int) -> None:
    """The graph's scores of a seeded batch of 5 images (not the traced batch size) are the module's."""
    x = torch.rand(5, channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = module(x)[OUTPUTS.index("score")].numpy()
    why = f"score {module.score_name}: cannot be exported to ONNX (the traced graph"
    try:
        got = OnnxSession(graph)(x.numpy())["score"]
    except Exception as e:  # onnxruntime's own exception types
        raise OSRError(f"{why} fails on a batch of another size: {str(e).splitlines()[0][-160:]})") from None
    gap = float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max()) if got.shape == want.shape else np.inf
    if not gap <= TOLERANCE:
        raise OSRError(f"{why}'s scores differ from torch's by {gap:.3g} (relative): the score is not computed by "
                       "tensor operations alone)")


class OnnxSession:
    """An onnxruntime session (CPUExecutionProvider) of a model.onnx of this project, and its metadata."""

    def __init__(self, path: str | Path | bytes):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no notices about unused initialisers on stderr
        path = path if isinstance(path, bytes) else str(path)
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            where = "model.onnx" if isinstance(path, bytes) else path
            raise OSRError(f"{where}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None
        names = [o.name for o in self.session.get_outputs()]
        if names != list(OUTPUTS):
            raise OSRError(f"{path if isinstance(path, str) else 'model.onnx'}: outputs {names}, not this project's "
                           f"{list(OUTPUTS)}")
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k: json.loads(v) for k, v in props.items()}

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """`OUTPUTS` for float32 images [N, C, H, W] in [0, 1]."""
        return dict(zip(OUTPUTS, self.session.run(None, {INPUT: np.ascontiguousarray(x, np.float32)}),
                        strict=True))

    def outputs(self, x: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
        """`OUTPUTS` for uint8 images [N, C, H, W] (a torch tensor, as `osr.graph.outputs` takes), in batches."""
        parts = [self(x[i:i + batch_size].float().div(255).numpy()) for i in range(0, len(x), batch_size)]
        return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in OUTPUTS}
