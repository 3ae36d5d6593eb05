"""The engines that run an artifact's classifier: torch (model.pt, `osr.graph.Deployed`) and onnxruntime
(model.onnx, `osr.onnx_graph.OnnxSession`). Both map uint8 images to the outputs of `osr.graph.OUTPUTS` and hand
over the calibration scores the artifact keeps (validation and test scores behind the threshold,
`osr.calibration`), each from its own file, so either file is enough on its own."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from osr.deploy import ENGINE_FILES
from osr.graph import load_deployed, outputs

ENGINES = tuple(ENGINE_FILES)


class Engine(NamedTuple):
    name: str
    outputs: Callable[[torch.Tensor, int], dict[str, np.ndarray]]  # (uint8 images [N, C, H, W], batch size)
    calibration: dict  # the scores the artifact keeps (`osr.calibration.Calibration.as_lists`; may be empty)


def open_engine(folder: str | Path, engine: str, device: torch.device) -> Engine:
    """The `engine` ("torch" on `device`, or "onnx" on the CPU) of the artifact `folder` (its card checked)."""
    path = Path(folder) / ENGINE_FILES[engine]
    if engine == "onnx":
        from osr.onnx_graph import OnnxSession

        session = OnnxSession(path)
        return Engine(engine, session.outputs, session.metadata.get("calibration", {}))
    module, deploy = load_deployed(path, device)
    return Engine(engine, lambda x, batch_size: outputs(module, x, batch_size), deploy.get("calibration", {}))
