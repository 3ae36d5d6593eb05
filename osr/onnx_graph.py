"""model.onnx: the `osr.graph.Deployed` module as an ONNX graph, and the onnxruntime session that runs it.

The graph holds the normalisation, the network, the score (with a kNN score's feature bank as a constant) and
the class decision at the threshold; its input ``images`` is float32 [batch, C, H, W] in [0, 1] with a dynamic
batch, its outputs are `osr.graph.OUTPUTS`. The card's figures go into the model's ``metadata_props``, each value
as JSON, so the file alone says what its scores mean. Weights are stored inside the one file.

The TorchScript-based exporter (``dynamo=False``) traces the module; it needs `onnx` only (not onnxscript).
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


def write_onnx(module: Deployed, path: str | Path, channels: int, size: int, metadata: dict) -> None:
    """Trace `module` (a CPU copy, eval mode) into `path` with `metadata` (JSON values) in metadata_props."""
    import onnx

    cpu = copy.deepcopy(module).cpu().eval()
    example = torch.rand(2, channels, size, size)
    batch = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notices (legacy exporter, traced constants)
        torch.onnx.export(cpu, (example,), buf, dynamo=False, opset_version=OPSET, input_names=[INPUT],
                          output_names=list(OUTPUTS), dynamic_axes={n: batch for n in (INPUT, *OUTPUTS)})
    graph = onnx.load_from_string(buf.getvalue())
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    with atomic_path(path) as tmp:
        tmp.write_bytes(graph.SerializeToString())


class OnnxSession:
    """An onnxruntime session (CPUExecutionProvider) of a model.onnx of this project, and its metadata."""

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no notices about unused initialisers on stderr
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise OSRError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None
        names = [o.name for o in self.session.get_outputs()]
        if names != list(OUTPUTS):
            raise OSRError(f"{path}: outputs {names}, not this project's {list(OUTPUTS)}")
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
