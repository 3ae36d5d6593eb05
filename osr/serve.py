"""`osr serve --model data/export`: the exported classifier as an HTTP service (FastAPI on uvicorn).

Endpoints:

- ``POST /predict``: multipart image uploads (field ``files``, one or more); answers ``{"rows": [...], "watch":
  {...}}``, the rows those of `osr predict` (``path`` is the upload's file name) and the watch the running counts
  below. An upload that is not a readable image refuses the whole request with 422 and the reason, naming the
  file; no image of it is counted;
- ``GET /health``: ``{"status": "ok", "engine", "threshold", "threshold_from"}``;
- ``GET /card``: the artifact's card;
- ``GET /watch``: the answers so far, how many were ``unknown``, and the range the card expects from the test set
  at the threshold in use (`osr.monitor`), with ``far_outside`` when the share is far outside it.

It listens on 127.0.0.1 (``--host`` to open it to others) and loads the classifier with the options of `osr
predict` (``--engine``, ``--known-tpr``, ``--threshold``). FastAPI and uvicorn are imported here only: the rest of
`osr` works without them.
"""
import argparse  # no `from __future__ import annotations`: FastAPI reads the endpoints' annotations as objects
import io
import sys

from osr import OSRError
from osr.predict import Classifier, add_model_arguments, load


def make_app(classifier: Classifier, batch_size: int = 64):
    """The FastAPI application answering for `classifier`."""
    from fastapi import FastAPI, File, HTTPException, UploadFile

    app = FastAPI(title="osr classifier", description="Open-set recognition: a known class, or unknown.")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "engine": classifier.engine.name, "threshold": classifier.threshold,
                "threshold_from": classifier.threshold_from}

    @app.get("/card")
    def card() -> dict:
        return classifier.card

    @app.get("/watch")
    def watch() -> dict:
        return classifier.watch.summary()

    @app.post("/predict")
    def predict(files: list[UploadFile] = File(...)) -> dict:
        images = [(f.filename or f"upload {i}", io.BytesIO(f.file.read())) for i, f in enumerate(files)]
        try:
            rows = classifier.predict_named(images, batch_size, strict=True)
        except OSRError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        return {"rows": rows, "watch": classifier.watch.summary()}

    return app


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=64)
    return add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    if not 0 <= args.port <= 65535:
        raise OSRError(f"--port must be in 0..65535 (got {args.port})")
    if args.batch_size < 1:
        raise OSRError(f"--batch-size must be >= 1 (got {args.batch_size})")
    classifier = load(args)
    print(f"serve: {args.model} ({classifier.engine.name}) on http://{args.host}:{args.port}", file=sys.stderr)
    uvicorn.run(make_app(classifier, args.batch_size), host=args.host, port=args.port, log_level="warning")
    return 0
