"""The HTTP application: TF Serving's REST API, /v1/analyze, the web page and operations.

    GET  /v1/models/<name>[/versions/<v>]             model status
    GET  /v1/models/<name>[/versions/<v>]/metadata    signature defs
    POST /v1/models/<name>[/versions/<v>]:predict     {"signature_name", "instances" | "inputs"}
    POST /v1/analyze        a whole photo (multipart file, raw image body, or JSON
                            {"image": {"b64": ...}, "explain": true}) -> every face
    GET  /  (web page)   /healthz   /readyz   /metrics (Prometheus)

Model calls never run on the event loop: the batcher's thread or Starlette's thread pool runs
them, so slow requests do not stall the others.
"""

import asyncio
import base64
import json
import pathlib
import sys
import time

import numpy as np

from gimefive_tf.errors import GiMeFiveError, first_line
from gimefive_tf.export import crop_signature, mirrored
from gimefive_tf.serve.protocol import BODY_TIMEOUT_S, log_time
from gimefive_tf.serve.servable import RequestError, format_predict, parse_predict

STATIC = pathlib.Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 10,000 x 10,000 photo is refused before it is decoded
MAX_ROWS = 1024  # instances per :predict request; the batcher runs them in max_batch_size chunks
MIN_BODY_RATE = 16 * 1024  # bytes/s a body must average (after BODY_TIMEOUT_S): a trickle is 408


class Metrics:
    """Prometheus counters of one app (its own registry: several apps may share a process)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("gimefive_requests", "HTTP requests by route and status code",
                                ["route", "code"], registry=self.registry)
        self.latency = Histogram("gimefive_request_seconds", "Request latency by route",
                                 ["route"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.batch_rows = Histogram("gimefive_batch_rows", "Rows per model call",
                                    registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128))
        self.faces = Counter("gimefive_faces", "Faces analysed by /v1/analyze",
                             registry=self.registry)

    def text(self):
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def route_of(path):
    """A low-cardinality route label for metrics."""
    if path.startswith("/v1/models/"):
        return "/v1/models:predict" if ":" in path.rsplit("/", 1)[-1] else "/v1/models"
    return path if path in ("/", "/v1/analyze", "/healthz", "/readyz", "/metrics") else "other"


def error_response(message, status):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status)


# ------------------------------------------------------------------------------- images

def check_image(data):
    """Refuse bytes that are not a picture (`pictures.FORMATS`, what every reader takes), or a
    picture too large to decode, from its header."""
    from PIL import Image

    from gimefive_tf.pictures import FORMATS, NAMES, format_of

    if not data:
        raise RequestError("the image is empty")
    try:
        header = format_of(data)
    except Image.DecompressionBombError as error:
        raise RequestError(f"the image is too large: {error}", 413) from None
    if header is None:
        raise RequestError(f"the data is not an image ({NAMES})")
    kind, (width, height) = header
    if kind not in FORMATS:
        raise RequestError(f"{kind} images are not supported; send {NAMES}")
    if width * height > MAX_PIXELS:
        raise RequestError(f"the image is {width}x{height}: more than {MAX_PIXELS:,} pixels",
                           413)
    return width, height


def overlay_png(crop, heatmap, side=128):
    """The crop with its heatmap (the default explanation) laid over it, as base64 PNG (what
    the web page draws)."""
    import cv2

    from gimefive_tf.explain.visualize import blend

    picture = cv2.resize(blend(crop, heatmap), (side, side), interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return base64.b64encode(encoded.tobytes()).decode()


# --------------------------------------------------------------------------------- model

class ModelRunner:
    """Runs signatures (batched or not) and the face pipeline for one Servable."""

    def __init__(self, servable, detector, framing, batching=True, max_batch_size=32,
                 timeout_ms=5.0, metrics=None, calibration_model=None, workers=None,
                 turned=True):
        import concurrent.futures
        import os

        from gimefive_tf.analyze import FacePipeline
        from gimefive_tf.serve.batching import Batcher

        self.servable, self.metrics = servable, metrics
        self.max_batch_size = int(max_batch_size)
        # Photos are decoded, searched and cropped by a few threads (as many as cores): more
        # would only queue for the same cores and hold more memory.
        self.workers = concurrent.futures.ThreadPoolExecutor(
            workers or max(2, os.cpu_count() or 2), thread_name_prefix="gimefive-worker")
        self.batcher = Batcher(self._run, max_batch_size, timeout_ms,
                               on_batch=metrics.batch_rows.observe if metrics else None) \
            if batching else None
        # an export from before the mirrored signatures decides on the crop alone, so that its
        # explanation is still of the decision it reports
        mirror = None if mirrored(servable.versions[servable.latest]) else False
        self.pipelines = {
            explain: FacePipeline(calibration_model, detector, framing,
                                  classifier=self._classifier(explain),
                                  size=servable.image_size, turned=turned, mirror=mirror)
            for explain in (False, True)}

    def _run(self, key, arrays):
        version, signature = key
        return self.servable.versions[version][signature](arrays)

    def run_now(self, key, arrays, wait=True):
        """Outputs of one signature call, from a worker thread."""
        if self.batcher is None:
            outputs = self._run(key, arrays)
            if self.metrics:
                self.metrics.batch_rows.observe(len(next(iter(arrays.values()))))
            return outputs
        return self.batcher.submit(key, arrays, wait).result()

    async def run(self, key, arrays):
        """Outputs of one signature call, awaited on the event loop; a request larger than
        max_batch_size runs as several model calls (as TF Serving splits large batches)."""
        rows = len(next(iter(arrays.values())))
        if self.batcher is None:
            return await self.in_worker(self.run_now, key, arrays)
        chunks = [{n: a[start:start + self.max_batch_size] for n, a in arrays.items()}
                  for start in range(0, rows, self.max_batch_size)]
        parts = await asyncio.gather(*(asyncio.wrap_future(self.batcher.submit(key, chunk))
                                       for chunk in chunks))
        return {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}

    async def in_worker(self, function, *args):
        """`function(*args)` on a worker thread, awaited on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.workers, function, *args)

    def _classifier(self, explain):
        def classify(crops, mirror):
            signature = crop_signature(mirror, explain)
            outputs = self.run_now((self.servable.latest, signature),
                                   {"pixels": np.asarray(crops, np.uint8)}, wait=False)
            probabilities = outputs["probabilities"]
            if not explain:
                return probabilities, None, None
            return probabilities, outputs["heatmap"], outputs["label_id"]
        return classify

    def analyze(self, image, name, explain):
        """predict's records for every face of `image`, plus each crop's corners and, with
        `explain`, its overlay PNG."""
        results = self.pipelines[bool(explain)].run([(name, image)])
        records = []
        for result in results:
            record = result.to_dict()
            if result.corners is not None:
                record["corners"] = np.round(result.corners.astype(float), 1).tolist()
            if explain and result.heatmap is not None:
                record["explained"] = result.target
                record["overlay_png"] = overlay_png(result.crop, result.heatmap)
            records.append(record)
        return records

    def warm_up(self):
        """One call of every signature and of the face pipeline, so the first user waits for
        nothing that could be done before."""
        from gimefive_tf.analyze import demo_image

        import cv2

        size = self.servable.image_size
        encoded = cv2.imencode(".png", np.zeros((size, size, 3), np.uint8))[1].tobytes()
        # A few batch sizes up to the largest a merged call can have (oneDNN prepares kernels
        # per shape; the rest are prepared by the first requests).
        sizes = sorted({1 << k for k in range(self.max_batch_size.bit_length())}
                       | {self.max_batch_size})
        for rows in sizes:
            for version, signatures in self.servable.versions.items():
                for name, signature in signatures.items():
                    value = np.array([encoded] * rows, dtype=object) \
                        if name == "serving_default" else np.zeros((rows, size, size, 3),
                                                                   np.uint8)
                    signature({next(iter(signature.inputs)): value})
        image = demo_image()[1]
        calls = [(explain, worker) for explain in (False, True)
                 for worker in range(self.workers._max_workers)]
        list(self.workers.map(lambda call: self.analyze(image, "warm-up", call[0]), calls))

    def close(self):
        if self.batcher is not None:
            self.batcher.close()
        self.workers.shutdown()


# ---------------------------------------------------------------------------- middleware

class _BodyTooLarge(RequestError):
    """A body that outgrew the limit while it streamed in (no Content-Length)."""

    def __init__(self, limit):
        super().__init__(f"the request body is larger than {limit / (1024 * 1024):g} MB", 413)


class _BodyStalled(RequestError):
    """A body that stopped arriving, or arrives too slowly to finish in bounded time."""

    def __init__(self, why):
        super().__init__(f"the request body {why}; send the whole body at once", 408)


class _ClientGone(RequestError):
    """The client closed its connection before its body was whole (nginx logs this as 499)."""

    def __init__(self):
        super().__init__("the client closed the connection before sending the whole body", 499)


class Guard:
    """Pure ASGI middleware: every request answered in bounded time and every error as JSON
    {"error"}: a body declared larger than the limit is refused at once (413), one that grows
    past it while streaming too; a body that stalls for `body_timeout_s`, or averages less than
    MIN_BODY_RATE, gets 408. A request answered before its body was read has its connection
    closed after the answer. One JSON access-log line per request, and request metrics."""

    def __init__(self, app, metrics, max_body_bytes=MAX_BODY_BYTES, log=sys.stdout,
                 body_timeout_s=BODY_TIMEOUT_S):
        self.app, self.metrics, self.max_body, self.log = app, metrics, max_body_bytes, log
        self.body_timeout = float(body_timeout_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, state = time.perf_counter(), {"status": 500, "sent": False, "bytes": 0}
        headers = dict(scope["headers"])
        try:  # the HTTP layer refused a malformed one; repeated equal values reach us
            length = int(headers.get(b"content-length", b"0").split(b",")[0] or 0)
        except ValueError:
            length = 0
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        state["body_done"] = not chunked and length == 0
        deadline = time.monotonic() + self.body_timeout + (length or self.max_body) / MIN_BODY_RATE

        async def closing_send(message):
            if message["type"] == "http.response.start":
                state["status"], state["sent"] = message["status"], True
                if not state["body_done"]:  # what is left of the body is never read
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (b"connection", b"close")]}
            await send(message)

        async def limited_receive():
            if state["body_done"]:
                return await receive()  # a disconnect, awaited by the app
            wait = min(self.body_timeout, deadline - time.monotonic())
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), wait)
            except asyncio.TimeoutError:
                raise _BodyStalled(f"stalled: nothing arrived for {wait:g} s"
                                   if wait == self.body_timeout else
                                   f"arrives slower than {MIN_BODY_RATE // 1024} KB/s") from None
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            if message["type"] == "http.request":
                state["bytes"] += len(message.get("body", b""))
                state["body_done"] = not message.get("more_body")
                if state["bytes"] > self.max_body:
                    raise _BodyTooLarge(self.max_body)
            return message

        error = None
        try:
            if length > self.max_body:  # refused from the header, before any of the body
                await error_response(str(_BodyTooLarge(self.max_body)), 413)(
                    scope, receive, closing_send)
            else:
                await self.app(scope, limited_receive, closing_send)
        except Exception as failure:  # a bug: the app's handler (`failed`) sent its JSON 500
            error = first_line(failure)
            if not state["sent"]:
                await error_response(f"internal error: {error}", 500)(scope, receive,
                                                                      closing_send)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope["path"])
            self.metrics.requests.labels(route, str(state["status"])).inc()
            self.metrics.latency.labels(route).observe(seconds)
            client = scope.get("client") or ("-", 0)
            line = {"time": log_time(), "client": client[0], "method": scope["method"], "path": scope["path"],
                    "status": state["status"], "ms": round(1000 * seconds, 1),
                    "bytes_in": max(length, state["bytes"])}
            if error and state["status"] >= 500:
                line["error"] = error
            print(json.dumps(line), file=self.log, flush=True)


# ------------------------------------------------------------------------------- routes

def _split_model_path(rest):
    """'name[/versions/v][/metadata][:verb]' -> (name, version or None, metadata, verb)."""
    verb = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, verb = rest.rsplit(":", 1)
    parts = rest.split("/")
    name, version, metadata = parts[0], None, False
    tail = parts[1:]
    if tail and tail[-1] == "metadata":
        metadata, tail = True, tail[:-1]
    if len(tail) == 2 and tail[0] == "versions":
        version = tail[1]
    elif len(tail) == 2 and tail[0] == "labels":
        raise RequestError(f"this server has no version labels; use /versions/<n> "
                           f"(label {tail[1]!r})", 404)
    elif tail:
        raise RequestError(f"unknown path /v1/models/{rest}", 404)
    if not name:
        raise RequestError("the path names no model: /v1/models/<name>", 404)
    return name, version, metadata, verb


def create_app(servable, detector="blazeface", framing=None, batching=True,
               max_batch_size=32, timeout_ms=5.0, max_body_bytes=MAX_BODY_BYTES,
               calibration_model=None, warm_up=True, log=sys.stdout, turned=True,
               body_timeout_s=BODY_TIMEOUT_S, app_folder=None):
    """The ASGI app serving `servable` (a gimefive_tf.serve.Servable); turned: /v1/analyze
    searches a picture with no face upright turned by quarter turns too; body_timeout_s: a
    request body that sends nothing for this long is answered 408 (`Guard`); app_folder: the
    offline web app (`export --formats web`), served as static files at /app/."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    metrics = Metrics()
    runner = ModelRunner(servable, detector, framing, batching, max_batch_size, timeout_ms,
                         metrics, calibration_model, turned=turned)
    state = {"ready": False}

    async def model_get(request):
        name, version, metadata, verb = _split_model_path(request.path_params["rest"])
        if verb:
            raise RequestError(f"use POST for :{verb}", 405)
        servable.version(name, version)
        return JSONResponse(servable.metadata(version) if metadata else servable.status(version))

    async def model_post(request):
        name, version, metadata, verb = _split_model_path(request.path_params["rest"])
        if metadata or verb is None:
            raise RequestError("POST .../<name>[/versions/<v>]:predict", 404)
        if verb in ("classify", "regress"):
            raise RequestError(f"this model has no {verb} signature; use :predict", 400)
        if verb != "predict":
            raise RequestError(f"unknown verb :{verb}; use :predict", 404)
        number, signatures = servable.version(name, version)
        body = await request.body()
        signature, arrays, layout = await runner.in_worker(_parse_request, body, signatures)
        try:
            outputs = await runner.run((number, signature), arrays)
        except Exception as error:  # the model refused the input: TF Serving says 400 too
            raise RequestError(await runner.in_worker(
                _refusal, error, arrays, signatures[signature])) from None
        return Response(await runner.in_worker(_render, format_predict(outputs, layout)),
                        media_type="application/json")

    async def analyze(request):
        data, name, explain = await _read_photo(request)
        check_image(data)
        image = await runner.in_worker(_decode, data)
        records = await runner.in_worker(runner.analyze, image, name, explain)
        metrics.faces.inc(sum(r["face"] is not None for r in records))
        return JSONResponse({"model": servable.name, "version": servable.latest,
                             "width": int(image.shape[1]), "height": int(image.shape[0]),
                             "faces": records})

    async def index(request):
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def readyz(request):
        if state["ready"]:
            return JSONResponse({"status": "ready", "model": servable.name,
                                 "versions": sorted(servable.versions)})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics_text(request):
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request, exc):
        return error_response(f"no such endpoint: {request.method} {request.url.path}",
                              getattr(exc, "status_code", 404))

    async def refused(request, exc):  # every RequestError, a route's or the body's (Guard)
        return error_response(str(exc), exc.status)

    async def failed(request, exc):  # a bug of ours: still JSON, and the Guard logs it
        return error_response(f"internal error: {first_line(exc)[:300]}", 500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if warm_up:
            await run_in_threadpool(runner.warm_up)
        state["ready"] = True
        yield
        state["ready"] = False
        await run_in_threadpool(runner.close)

    app = Starlette(routes=[
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_text),
        Route("/v1/analyze", analyze, methods=["POST"]),
        Route("/v1/models/{rest:path}", model_get, methods=["GET"]),
        Route("/v1/models/{rest:path}", model_post, methods=["POST"]),
    ] + ([Mount("/app", StaticFiles(directory=app_folder, html=True))] if app_folder else []),
        exception_handlers={404: not_found, 405: not_found, RequestError: refused,
                           Exception: failed}, lifespan=lifespan)
    app.state.runner, app.state.metrics = runner, metrics
    return Guard(app, metrics, max_body_bytes, log, body_timeout_s)


def _parse_request(body, signatures):
    """(signature, arrays, layout) of a :predict body, its images checked (a worker's job:
    parsing 10 MB of JSON would stall the event loop)."""
    signature, arrays, layout = parse_predict(parse_json(body), signatures)
    if len(next(iter(arrays.values()))) > MAX_ROWS:
        raise RequestError(f"a request holds at most {MAX_ROWS} instances; split it")
    pixels = 0
    for info in signatures[signature].inputs.values():
        if info.dtype == "string":
            for data in arrays[info.name].ravel():
                width, height = check_image(data)
                pixels += width * height
    if pixels > MAX_PIXELS:
        raise RequestError(f"the request's images hold {pixels:,} pixels in all; at most "
                           f"{MAX_PIXELS:,} per request", 413)
    return signature, arrays, layout


def parse_json(body):
    """A request body's JSON; RequestError when it is not JSON or nests deeper than Python's
    parser can follow (its recursion limit bounds the depth)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(f"the request body is not JSON: {error}") from None
    except RecursionError:
        raise RequestError("the request body's JSON is nested too deeply") from None


def _refusal(error, arrays, signature):
    """Why the model could not run a :predict input: an image that does not decode is named
    as such (the model's own message says only that its graph failed)."""
    from gimefive_tf.pictures import decode_picture

    for info in signature.inputs.values():
        if info.dtype == "string":
            for index, data in enumerate(arrays[info.name].ravel()):
                try:
                    decode_picture(data, f"instance {index}")
                except GiMeFiveError as unreadable:
                    return str(unreadable)
    return f"the model could not run this input: {first_line(error)[:300]}"


def _render(content):
    return json.dumps(content, separators=(",", ":")).encode()


async def _read_photo(request):
    """(bytes, name, explain) from a multipart upload, a JSON body or a raw image body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    explain = request.query_params.get("explain", "").lower() in ("1", "true", "yes")
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=10)
        except RequestError:
            raise
        except Exception as error:
            raise RequestError(f"cannot read the form: {error}") from None
        upload = form.get("image") or next((v for v in form.values()
                                            if hasattr(v, "read")), None)
        if upload is None or not hasattr(upload, "read"):
            raise RequestError("the form has no file; send the photo as the field 'image'")
        explain = explain or str(form.get("explain", "")).lower() in ("1", "true", "yes", "on")
        return await upload.read(), upload.filename or "image", explain
    body = await request.body()
    if kind == "application/json" or (kind != "multipart/form-data" and body[:1] == b"{"):
        payload = parse_json(body)
        try:
            encoded = payload["image"]["b64"]
            data = base64.b64decode(encoded, validate=True)
        except (ValueError, KeyError, TypeError):
            raise RequestError('send JSON as {"image": {"b64": "<base64 image>"}, '
                               '"explain": false}') from None
        explain = explain or bool(payload.get("explain", False))
        return data, str(payload.get("name", "image")), explain
    if not body:
        raise RequestError("the request has no photo: send a multipart file 'image', "
                           'JSON {"image": {"b64": ...}} or the image bytes')
    return body, "image", explain


def _decode(data):
    from gimefive_tf.pictures import decode_picture

    try:
        return decode_picture(data)
    except GiMeFiveError as error:
        raise RequestError(str(error)) from None
