"""The server: TF Serving's REST API checked against the documented shapes and the SavedModel's
own outputs, /v1/analyze against `predict`, bad requests, batching, metrics, and a real
uvicorn process under concurrent load and SIGTERM."""

import base64
import concurrent.futures
import contextlib
import io
import json
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf

from gimefive_tf.cli import run_cli
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.loading import load_model
from gimefive_tf.serve import Servable, create_app
from gimefive_tf.serve.batching import Batcher
from gimefive_tf.serve.client import free_port

httpx = pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402


def jpeg(rgb, quality=95):
    return cv2.imencode(".jpg", cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def b64(data):
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def faces(astronaut):
    """Three face-like 64x64 crops of a real photo at different framings."""
    return np.stack([cv2.resize(astronaut[y:y + s, x:x + s], (64, 64), interpolation=cv2.INTER_AREA)
                     for x, y, s in ((170, 40, 140), (160, 30, 160), (180, 60, 110))])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped model exported as a TF Serving SavedModel (version 1), explaining with the
    library's default explanation (LayerCAM on its default layer) as the export command does."""
    from gimefive_tf.export import export_savedmodel

    model = load_model()
    root = tmp_path_factory.mktemp("serve") / "savedmodel" / "gimefive"
    export_savedmodel(model, root / "1", None, 64)
    return root, model


@pytest.fixture(scope="module")
def client(exported):
    """The app on the SavedModel, warmed up through its lifespan (as uvicorn runs it)."""
    app = create_app(Servable.from_savedmodel(exported[0]), log=io.StringIO())
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def keras_client(exported):
    """The same app on the .keras model, unbatched."""
    app = create_app(Servable.from_keras(exported[1], "gimefive"), batching=False,
                     warm_up=False, log=io.StringIO())
    with TestClient(app) as client:
        yield client


# ------------------------------------------------------------------ TF Serving REST API

def test_status_and_metadata_have_tf_servings_shapes(client):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}
    assert client.get("/v1/models/gimefive").json() == expected
    assert client.get("/v1/models/gimefive/versions/1").json() == expected
    metadata = client.get("/v1/models/gimefive/metadata").json()
    assert metadata["model_spec"] == {"name": "gimefive", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "predict_pixels", "explain", "predict_mirrored",
                               "explain_mirrored"}
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["images"]["dtype"] == "DT_STRING"
    assert default["inputs"]["images"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    probabilities = default["outputs"]["probabilities"]
    assert probabilities["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in probabilities["tensor_shape"]["dim"]] == ["-1", "6"]
    pixels = signatures["predict_pixels"]["inputs"]["pixels"]
    assert pixels["dtype"] == "DT_UINT8"
    assert [d["size"] for d in pixels["tensor_shape"]["dim"]] == ["-1", "64", "64", "3"]
    assert set(signatures["explain"]["outputs"]) == {"probabilities", "label", "label_id",
                                                     "heatmap"}


def test_predict_rows_of_b64_images_match_the_savedmodel(client, keras_client, exported, faces):
    body = {"instances": [{"b64": b64(jpeg(face))} for face in faces]}
    response = client.post("/v1/models/gimefive:predict", json=body)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    assert set(predictions[0]) == {"probabilities", "label", "label_id"}
    reference = tf.saved_model.load(str(exported[0] / "1")).signatures["serving_default"](
        images=tf.constant([jpeg(face) for face in faces]))
    got = np.array([p["probabilities"] for p in predictions])
    assert np.abs(got - reference["probabilities"].numpy()).max() < 1e-5
    assert [p["label"] for p in predictions] == [
        b.decode() for b in reference["label"].numpy()]
    assert [p["label_id"] for p in predictions] == reference["label_id"].numpy().tolist()
    # The same request, named input and explicit version, on the in-process .keras model.
    named = {"signature_name": "serving_default",
             "instances": [{"images": {"b64": b64(jpeg(face))}} for face in faces]}
    again = keras_client.post("/v1/models/gimefive/versions/1:predict", json=named).json()
    assert np.abs(np.array([p["probabilities"] for p in again["predictions"]]) - got).max() \
        < 1e-5


def test_predict_columnar_pixels_and_explain(client, exported, faces):
    model = exported[1]
    body = {"signature_name": "predict_pixels", "inputs": faces.tolist()}
    outputs = client.post("/v1/models/gimefive:predict", json=body).json()["outputs"]
    expected = tf.nn.softmax(model(faces.astype(np.float32), training=False)).numpy()
    assert np.abs(np.array(outputs["probabilities"]) - expected).max() < 1e-5
    assert outputs["label"] == [EMOTIONS[i] for i in expected.argmax(1)]
    rows = client.post("/v1/models/gimefive:predict",
                       json={"signature_name": "explain",
                             "instances": faces[:2].tolist()}).json()["predictions"]
    heatmap = np.array(rows[0]["heatmap"])
    assert heatmap.shape == (64, 64) and 0 <= heatmap.min() and heatmap.max() <= 1


BAD_PREDICTS = [
    ("not an image", b'{"instances": [{"b64": "aGVsbG8gd29ybGQ="}]}', 400, "not an image"),
    ("empty body", b"", 400, "not JSON"),
    ("wrong JSON", b'{"instances": [1, 2', 400, "not JSON"),
    ("not an object", b"[1, 2, 3]", 400, "JSON object"),
    ("neither", b'{"signature_name": "predict_pixels"}', 400, "instances"),
    ("unknown signature", b'{"signature_name": "nope", "instances": [1]}', 400, "not found"),
    ("both", b'{"instances": [1], "inputs": [1]}', 400, "both"),
    ("bad pixels", b'{"signature_name": "predict_pixels", "instances": [[1, 2]]}', 400,
     "shape"),
    ("bad b64", b'{"instances": [{"b64": "%%%"}]}', 400, "base64"),
    ("out of range", json.dumps({"signature_name": "predict_pixels",
                                 "instances": np.full((1, 64, 64, 3), 300).tolist()}).encode(),
     400, "0-255"),
    ("nested 200,000 deep", b'{"instances": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", 400,
     "nested too deeply"),
    ("ragged", json.dumps({"instances": [["a", "b"], ["c"]]}).encode(), 400,
     "deeper than its shape"),
    ("strings nested", json.dumps({"instances": [[[[{"b64": "AAAA"}]]]]}).encode(), 400,
     "deeper than its shape"),
    ("a value above its depth", json.dumps({"signature_name": "predict_pixels",
                                            "instances": [[1, [2]]]}).encode(), 400,
     "nested lists of one shape"),
]


@pytest.mark.parametrize("case, body, status, words", BAD_PREDICTS,
                         ids=[case[0] for case in BAD_PREDICTS])
def test_bad_predict_requests_get_one_json_error_and_the_server_goes_on(client, faces, case,
                                                                        body, status, words):
    response = client.post("/v1/models/gimefive:predict", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == status
    assert list(response.json()) == ["error"] and words in response.json()["error"]
    good = client.post("/v1/models/gimefive:predict",
                       json={"instances": [{"b64": b64(jpeg(faces[0]))}]})
    assert good.status_code == 200


def test_unknown_models_versions_and_paths_are_404(client):
    missing = client.post("/v1/models/other:predict", json={"instances": [1]})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Servable not found for request: Latest(other)"}
    version = client.get("/v1/models/gimefive/versions/7")
    assert version.status_code == 404 and "Specific(gimefive, 7)" in version.json()["error"]
    posted = client.post("/v1/models/gimefive/versions/7:predict", json={"instances": [1]})
    assert posted.status_code == 404 and "Specific(gimefive, 7)" in posted.json()["error"]
    assert client.get("/v1/nothing").status_code == 404
    assert "error" in client.get("/v1/nothing").json()


def test_a_picture_that_does_not_decode_is_called_so_on_every_route(client, astronaut):
    truncated = jpeg(astronaut)[:-3000]  # a whole header, half the picture
    predicted = client.post("/v1/models/gimefive:predict",
                            json={"instances": [{"b64": b64(jpeg(astronaut))},
                                                {"b64": b64(truncated)}]})
    assert predicted.status_code == 400
    assert predicted.json() == {"error": "instance 1 is not a readable image"}
    analyzed = client.post("/v1/analyze", content=truncated,
                           headers={"content-type": "image/jpeg"})
    assert analyzed.status_code == 400 and "not a readable image" in analyzed.json()["error"]
    deep = client.post("/v1/analyze", content=b'{"image": ' + b"[" * 200_000 + b"]" * 200_000
                       + b"}", headers={"content-type": "application/json"})
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]


def test_a_streamed_body_over_the_limit_is_413(client, faces):
    def chunks():
        for _ in range(11):
            yield b"\0" * (1024 * 1024)

    for path in ("/v1/analyze", "/v1/models/gimefive:predict"):
        response = client.post(path, content=chunks(), headers={"content-type": "image/jpeg"})
        assert response.status_code == 413 and "larger than 10 MB" in response.json()["error"]


def test_a_request_larger_than_a_batch_runs_in_chunks(client, faces):
    pixels = np.concatenate([faces] * 14)  # 42 rows: one chunk of 32 and one of 10
    outputs = client.post("/v1/models/gimefive:predict",
                          json={"signature_name": "predict_pixels",
                                "inputs": pixels.tolist()}).json()["outputs"]
    probabilities = np.array(outputs["probabilities"])
    assert probabilities.shape == (42, 6)
    assert np.abs(probabilities - np.tile(probabilities[:3], (14, 1))).max() < 1e-5


def test_huge_bodies_and_images_are_refused_before_decoding(client, faces):
    big = client.post("/v1/analyze", content=b"\0" * (20 * 1024 * 1024),
                      headers={"content-type": "image/jpeg"})
    assert big.status_code == 413 and "larger than 10 MB" in big.json()["error"]
    huge = cv2.imencode(".png", np.zeros((10_000, 10_000), np.uint8))[1].tobytes()
    for response in (client.post("/v1/analyze", files={"image": ("huge.png", huge)}),
                     client.post("/v1/models/gimefive:predict",
                                 json={"instances": [{"b64": b64(huge)}]})):
        assert response.status_code == 413 and "10000x10000" in response.json()["error"]
    assert client.post("/v1/models/gimefive:predict",
                       json={"instances": [{"b64": b64(jpeg(faces[0]))}]}).status_code == 200


def test_every_complete_version_is_served_and_the_newest_by_default(exported, tmp_path):
    import shutil

    folder = tmp_path / "gimefive"
    for version in ("1", "2"):
        shutil.copytree(exported[0] / "1", folder / version)
    (folder / "3").mkdir()  # an export cut short: no saved_model.pb, not served
    servable = Servable.from_savedmodel(folder)
    assert sorted(servable.versions) == [1, 2] and servable.latest == 2
    assert [v["version"] for v in servable.status()["model_version_status"]] == ["2", "1"]
    assert servable.metadata()["model_spec"]["version"] == "2"


# ------------------------------------------------------------------------- /v1/analyze

def test_analyze_answers_what_predict_prints(client, astronaut, tmp_path, capsys):
    from gimefive_tf.predict import main as predict_main

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    assert run_cli(predict_main, [str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    answer = client.post("/v1/analyze", files={"image": ("astronaut.png", path.read_bytes())})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["width"], body["height"]) == (512, 512) and body["model"] == "gimefive"
    served = body["faces"]
    assert len(served) == len(printed) == 1
    assert served[0]["emotion"] == printed[0]["emotion"] == "happiness"
    assert served[0]["box"] == printed[0]["box"]
    assert served[0]["input"] == "astronaut.png"
    for emotion in EMOTIONS:
        assert abs(served[0]["scores"][emotion] - printed[0]["scores"][emotion]) <= 1e-4
    # JSON with base64 gives the same, and the Grad-CAM overlay on request.
    explained = client.post("/v1/analyze", json={"image": {"b64": b64(path.read_bytes())},
                                                 "explain": True}).json()["faces"][0]
    assert explained["scores"] == served[0]["scores"] or all(
        abs(explained["scores"][e] - served[0]["scores"][e]) <= 1e-4 for e in EMOTIONS)
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(explained["overlay_png"]), np.uint8),
                           cv2.IMREAD_COLOR)
    assert overlay.shape == (128, 128, 3)
    assert explained["explained"] == "happiness" and len(explained["corners"]) == 4


def test_a_phone_portrait_is_turned_upright_by_its_exif(client, astronaut):
    from PIL import Image

    stored = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut)))  # on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to show"
    data = io.BytesIO()
    stored.save(data, "JPEG", quality=95, exif=exif.tobytes())
    [face] = client.post("/v1/analyze", files={"image": ("portrait.jpg", data.getvalue())}
                         ).json()["faces"]
    assert face["emotion"] == "happiness"
    x, y, w, h = face["box"]
    assert 150 < x < 200 and 50 < y < 100  # where the face is in the upright picture


def test_analyze_reports_no_face_and_refuses_bad_photos(client):
    blank = cv2.imencode(".png", np.full((240, 320, 3), 128, np.uint8))[1].tobytes()
    none = client.post("/v1/analyze", content=blank, headers={"content-type": "image/png"})
    assert none.status_code == 200
    assert none.json()["faces"] == [{"input": "image", "face": None, "box": None,
                                     "emotion": None, "scores": None,
                                     "reason": "no face found"}]
    for kwargs in ({"files": {"image": ("x.jpg", b"certainly not a jpeg")}},
                   {"content": b"", "headers": {"content-type": "image/jpeg"}},
                   {"json": {"picture": "x"}},
                   {"content": b"{oops", "headers": {"content-type": "application/json"}},
                   {"data": {"explain": "1"}, "files": {"other": ("a.txt", b"")}}):
        response = client.post("/v1/analyze", **kwargs)
        assert 400 <= response.status_code < 500 and set(response.json()) == {"error"}
    assert client.post("/v1/analyze", content=blank,
                       headers={"content-type": "image/png"}).status_code == 200


# ---------------------------------------------------------------------- batching, ops

def test_the_batcher_merges_close_requests_and_isolates_a_bad_one():
    calls = []

    def run(key, arrays):
        calls.append(len(arrays["x"]))
        if np.any(arrays["x"] < 0):
            raise ValueError("negative")
        return {"y": arrays["x"] * 2}

    batcher = Batcher(run, max_batch_size=8, timeout_ms=50)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        futures = list(pool.map(lambda i: batcher.submit("k", {"x": np.array([i, i])}),
                                range(12)))
        results = [f.result(timeout=10) for f in futures]
    assert [r["y"].tolist() for r in results] == [[2 * i, 2 * i] for i in range(12)]
    assert max(calls) == 8 and len(calls) < 12  # merged, never above the batch size
    calls.clear()
    good, bad = batcher.submit("k", {"x": np.array([1])}), batcher.submit("k", {"x": np.array([-1])})
    assert good.result(timeout=10)["y"].tolist() == [2]
    with pytest.raises(ValueError):
        bad.result(timeout=10)
    assert calls == [2, 1, 1]  # merged, failed, then each alone: only the bad one fails
    calls.clear()
    other, mine = batcher.submit("other", {"x": np.array([5])}), \
        batcher.submit("k", {"x": np.array([3])}, wait=False)
    assert mine.result(timeout=10)["y"].tolist() == [6]
    assert other.result(timeout=10)["y"].tolist() == [10]  # another key: its own call
    queued = [batcher.submit("k", {"x": np.array([i])}) for i in range(3)]
    batcher.close()  # finishes what is queued
    assert [f.result(timeout=10)["y"].tolist() for f in queued] == [[0], [2], [4]]
    with pytest.raises(RuntimeError):
        batcher.submit("k", {"x": np.array([1])})


def test_health_readiness_and_metrics(client, faces):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/models/gimefive:predict", json={"instances": [{"b64": b64(jpeg(faces[0]))}]})
    text = client.get("/metrics").text
    assert 'gimefive_requests_total{code="200",route="/v1/models:predict"}' in text
    assert "gimefive_request_seconds_bucket" in text and "gimefive_batch_rows_count" in text


def test_the_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/analyze" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, works offline


# ----------------------------------------------------------------- a real server process

@contextlib.contextmanager
def server(*args):
    """`python -m gimefive_tf.serve` on a free port; yields (base url, process)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gimefive_tf.serve", "--port", str(port),
                                *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the server did not become ready")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


HOSTILE = [  # (what a client sends and then holds open, the answer's status, its words)
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\nab", 413,
     "larger than 10 MB"),
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n", 413,
     "larger than 10 MB"),
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
     b"Content-Length: 1000\r\n\r\n\xff\xd8", 408, "stalled"),
    (b"POST /v1/models/gimefive:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n{",
     408, "stalled"),
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
     408, "stalled"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", 408, "headers did not arrive"),
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400,
     "not valid HTTP"),
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400,
     "not valid HTTP"),
    (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     400, "not valid HTTP"),
]


def answer_and_close(connection, within):
    """(status, JSON body, seconds until the server closed) of a raw connection."""
    connection.settimeout(within)
    data, started = b"", time.monotonic()
    while chunk := connection.recv(65536):  # socket.timeout: the server never closed it
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), time.monotonic() - started


def test_a_real_server_takes_concurrent_clients_and_stops_gracefully(faces, astronaut):
    body = {"instances": [{"b64": b64(jpeg(faces[0]))}]}
    photo = jpeg(astronaut)
    # 3 s: ample for the normal clients' headers under load, short for the hostile connections
    with server("--body-timeout-s", "3") as (url, process):
        port = int(url.rsplit(":", 1)[1])
        hostile = []  # held open while the clients below run; each answered and closed in time
        for sent, *_ in HOSTILE:
            hostile.append(socket.create_connection(("127.0.0.1", port)))
            hostile[-1].sendall(sent)
        idle = socket.create_connection(("127.0.0.1", port))  # connects and says nothing
        with socket.create_connection(("127.0.0.1", port)) as gone:  # leaves mid-body: a 499
            gone.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\nab")

        def call(i):
            if i % 4 == 0:
                return httpx.post(url + "/v1/analyze", files={"image": ("a.jpg", photo)},
                                  timeout=60)
            return httpx.post(url + "/v1/models/gimefive:predict", json=body, timeout=60)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(call, range(48)))
        assert [r.status_code for r in responses] == [200] * 48
        for connection, (sent, status, words) in zip(hostile, HOSTILE):
            answered, content, _ = answer_and_close(connection, within=10)
            assert (answered, list(content)) == (status, ["error"]), sent
            assert words in content["error"], sent
        idle.settimeout(10)
        assert idle.recv(1) == b""  # closed without a word
        metrics = httpx.get(url + "/metrics").text
        merged = [line for line in metrics.splitlines()
                  if line.startswith("gimefive_batch_rows_count")]
        calls = float(merged[0].split()[-1])
        assert calls < 48  # concurrent requests shared model calls
        # SIGTERM while a request is in flight: it still gets its answer, then the server exits.
        slow = concurrent.futures.ThreadPoolExecutor(1).submit(
            httpx.post, url + "/v1/analyze?explain=1", files={"image": ("a.jpg", photo)},
            timeout=60)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert slow.result().status_code == 200
        # uvicorn finishes the request, then ends by the signal it was sent (as it should).
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert process.stderr.read() == ""  # no traceback, no library warning
        out = process.stdout.read()
    first, *log = out.splitlines()
    assert first.startswith("serving gimefive (versions 1, batching on) at http://127.0.0.1:")
    lines = [json.loads(line) for line in log]  # JSON lines: requests, and the HTTP layer's
    entries = [line for line in lines if "path" in line]
    assert {e["path"] for e in entries} >= {"/v1/analyze", "/v1/models/gimefive:predict"}
    assert all({"time", "client", "method", "status", "ms"} <= set(e) for e in entries)
    assert {e["status"] for e in entries} >= {200, 408, 413, 499}
    warnings = [line["message"] for line in lines if line.get("level") == "warning"]
    assert warnings.count("Invalid HTTP request received.") == 3


@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "not a port number"),
    (["--savedmodel", "/nonexistent/savedmodel/x"], "is not a folder"),
    (["--model", "/nonexistent/model.keras"], "does not exist"),
    (["--max-batch-size", "0"], "must be at least 1"),
    (["--app", "/nonexistent/web"], "is not a web app"),
])
def test_bad_command_lines_are_one_line_and_exit_2(args, words):
    result = subprocess.run([sys.executable, "-m", "gimefive_tf.serve", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert words in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_one_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "gimefive_tf.serve", "--port",
                                 str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")


# ------------------------------------------------------- one decision and its explanation

@pytest.fixture(scope="module")
def mirror_changes_the_answer(datasets_dir, tmp_path_factory):
    """A picture (PNG) of a held-out RAF-DB face pasted into a scene, whose crop the face
    pipeline calls one emotion alone and another with its mirror image; with the library's
    record for it (the decision and the LayerCAM map of that decision). The faces whose two
    views disagree most are tried first."""
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.inference import Predictor
    from gimefive_tf.scenes import random_scene

    _, validation = stratified_split(read_dataset(datasets_dir / "RAF-DB"), 0.1, seed=0)
    faces, _ = load_arrays(validation, 64)
    model = load_model()
    alone, both = Predictor(model), Predictor(model, mirror=True)
    rng = np.random.default_rng(0)
    library = FacePipeline(model, explain="layercam")
    for index in np.argsort(-np.abs(alone(faces) - both(faces)).max(1))[:60]:
        picture = random_scene(faces[index], rng).picture
        found = library.faces(picture)
        crop = found[0][1][None] if len(found) == 1 else None
        if crop is not None and alone(crop).argmax() != both(crop).argmax():
            break
    else:
        pytest.fail("no held-out face whose mirror image changes the pipeline's answer")
    path = tmp_path_factory.mktemp("mirror") / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    [result] = library(picture)
    return path, result


@pytest.mark.data
def test_the_server_and_batch_explain_the_emotion_they_report(mirror_changes_the_answer, client,
                                                               exported, tmp_path):
    """On a face whose mirror image changes the answer, the server's /v1/analyze and `batch`
    (both on the SavedModel) report the library's mirror-averaged emotion, and the server's
    map explains that emotion and equals the library's."""
    from gimefive_tf.batch import main as batch_main
    from gimefive_tf.serve.app import overlay_png
    from test_batch import read_shards

    path, library = mirror_changes_the_answer
    [served] = client.post("/v1/analyze?explain=1",
                           files={"image": ("face.png", path.read_bytes())}).json()["faces"]
    assert served["emotion"] == served["explained"] == library.emotion == library.target
    assert served["box"] == library.to_dict()["box"]
    for emotion in EMOTIONS:
        assert abs(served["scores"][emotion] - library.scores[emotion]) <= 1e-4

    def pixels(png):
        return cv2.imdecode(np.frombuffer(base64.b64decode(png), np.uint8), cv2.IMREAD_COLOR)

    difference = np.abs(pixels(served["overlay_png"]).astype(int)
                        - pixels(overlay_png(library.crop, library.heatmap)))
    assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 8

    assert batch_main([str(path), "--out", str(tmp_path / "rows"), "--model", str(exported[0])]) == 0
    [row] = read_shards(tmp_path / "rows", "rows").to_dict("records")
    assert row["emotion"] == library.emotion
    assert max(abs(float(row[e]) - library.scores[e]) for e in EMOTIONS) <= 1e-4


def test_an_export_from_before_the_mirrored_signatures_still_explains_what_it_reports(
        astronaut, tmp_path):
    """Served from an export with only the first three signatures, faces are decided on the
    crop alone, and the map is of that decision."""
    import keras

    from gimefive_tf.export import mirrored, serving_signatures

    archive = keras.export.ExportArchive()
    for name, function in serving_signatures(load_model(), None, 64).items():
        if "mirrored" not in name:
            archive.add_endpoint(name, function)
    archive.write_out(str(tmp_path / "gimefive" / "1"), verbose=False)
    servable = Servable.from_savedmodel(tmp_path / "gimefive")
    assert not mirrored(servable.versions[1])
    app = create_app(servable, batching=False, warm_up=False, log=io.StringIO())
    with TestClient(app) as client:
        [face] = client.post("/v1/analyze?explain=1", files={
            "image": ("a.jpg", jpeg(astronaut))}).json()["faces"]
    assert face["explained"] == face["emotion"] == "happiness"
