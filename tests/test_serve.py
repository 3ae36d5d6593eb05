"""`osr serve`: a live uvicorn server on a free port, asked by a real HTTP client, answers as `osr predict`
does; a bad upload gets a 4xx with its reason; the unknown share is counted and compared with the card's range."""
from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from PIL import Image
from test_threshold import save_images

from conftest import tiny_artifact, tiny_images
from osr.monitor import MIN_ANSWERS, UnknownWatch, far_outside
from osr.predict import Classifier, console
from osr.serve import make_app


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return tiny_artifact(tmp_path_factory.mktemp("a") / "export")


@pytest.fixture()
def server(artifact):
    """A uvicorn server of the artifact (onnx engine, --known-tpr 0.5) on 127.0.0.1, port 0, in a thread."""
    classifier = Classifier.load(artifact, engine="onnx", known_tpr=0.5)
    config = uvicorn.Config(make_app(classifier, batch_size=4), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, classifier
    srv.should_exit = True
    thread.join(10)


def uploads(paths):
    return [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png")) for p in paths]


def test_the_service_answers_as_osr_predict_and_counts_its_answers(server, artifact, tmp_path):
    client, _ = server
    images = save_images(tiny_images(10, 1), tmp_path / "val")
    assert client.get("/health").json() == {"status": "ok", "engine": "onnx", "threshold": pytest.approx(
        Classifier.load(artifact, "cpu", known_tpr=0.5).threshold), "threshold_from": "known_tpr 0.5"}
    assert client.get("/card").json()["classes"] == ["cat", "dog"]
    res = client.post("/predict", files=uploads(images))
    assert res.status_code == 200
    rows = res.json()["rows"]
    want = Classifier.load(artifact, "cpu", known_tpr=0.5).predict(images)
    assert [r["path"] for r in rows] == [w["path"].rsplit("/", 1)[1] for w in want]
    for r, w in zip(rows, want, strict=True):
        assert r["prediction"] == w["prediction"] and r["score"] == pytest.approx(w["score"], abs=1e-4)
        assert r["threshold_from"] == "known_tpr 0.5" and r["error"] == ""
    watch = client.get("/watch").json()
    unknown = sum(r["prediction"] == "unknown" for r in rows)
    assert watch["answered"] == 10 and watch["unknown"] == unknown and 0 <= watch["expected"]["low"] <= 1


def test_a_bad_upload_gets_a_4xx_with_its_reason_and_is_not_counted(server, tmp_path):
    client, _ = server
    good = save_images(tiny_images(2, 5), tmp_path / "in")
    files = uploads(good) + [("files", ("notes.png", b"not an image", "image/png"))]
    res = client.post("/predict", files=files)
    assert res.status_code == 422 and res.json()["detail"].startswith("notes.png: UnidentifiedImageError")
    res = client.post("/predict", data={"x": "1"})  # no files at all
    assert res.status_code == 422 and "files" in res.text
    res = client.post("/predict", content=b"raw bytes", headers={"content-type": "application/octet-stream"})
    assert 400 <= res.status_code < 500
    assert client.get("/watch").json()["answered"] == 0


def test_the_unknown_share_is_compared_with_the_range_the_test_set_gives(artifact, tmp_path, capsys):
    assert not far_outside(0.9, MIN_ANSWERS - 1, {"low": 0.05, "high": 0.6})  # too few answers
    assert far_outside(0.9, 100, {"low": 0.05, "high": 0.6}) and far_outside(0.0, 400, {"low": 0.05, "high": 0.6})
    assert not far_outside(0.65, 100, {"low": 0.05, "high": 0.6})  # within three standard errors
    assert not far_outside(0.3, 100, {"low": 0.05, "high": 0.6}) and not far_outside(0.9, 100, None)
    watch = UnknownWatch({"low": 0.05, "high": 0.6})
    watch.add(40, 39)
    assert watch.warning() == ("98% of 40 answers are unknown, far outside the 5%-60% the test set gives at this "
                               "threshold: the inputs may differ from the images the model was trained and tested on")
    images = save_images(tiny_images(24, 9), tmp_path / "in")
    assert console(["predict", "--model", str(artifact), "--threshold", "1e9", *images]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    expected = Classifier.load(artifact, "cpu").calibration.expected_unknown_share(1e9)
    assert expected == {"low": 1.0, "high": 1.0}  # every score is below: all rejected, known or not
    assert err[-1] == "predict: 24 images, 24 unknown (100.0%; the test set gives 100.0%-100.0% at this threshold), " \
                      "0 unreadable"
    # all-white images: one score s_w; just above it every one is unknown, just below none is
    white = tmp_path / "white"
    white.mkdir()
    for i in range(30):
        Image.new("RGB", (16, 16), "white").save(white / f"{i}.png")
    clf = Classifier.load(artifact, "cpu")
    s_w = clf.predict([white / "0.png"])[0]["score"]
    warned = 0
    for threshold, share in ((s_w + 1e-3, 1.0), (s_w - 1e-3, 0.0)):
        assert console(["predict", "--model", str(artifact), "--threshold", str(threshold), str(white)]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        expected = clf.calibration.expected_unknown_share(threshold)
        assert err[0].startswith(f"predict: 30 images, {int(30 * share)} unknown ({share:.1%}; the test set gives "
                                 f"{expected['low']:.1%}-{expected['high']:.1%} at this threshold)")
        if far_outside(share, 30, expected):
            assert err[1].startswith(f"warning: {share:.0%} of 30 answers are unknown, far outside the ")
            warned += 1
        else:
            assert len(err) == 1
    assert warned >= 1
