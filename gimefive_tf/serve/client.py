"""A Python client of the server's REST API, standard library only, and a way to start the
server from Python (a notebook, a script) as its own process, exactly as the command line does.

The same `Client` talks to TensorFlow Serving for the TF Serving routes (`status`, `metadata`,
`predict`); `analyze`, `ready` and `metrics` are this server's own.
"""

import base64
import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from gimefive_tf.errors import GiMeFiveError


class Client:
    """Calls one served model. url: the server's base URL; model: the served name."""

    def __init__(self, url="http://127.0.0.1:8501", model="gimefive", timeout=60):
        self.url, self.model, self.timeout = url.rstrip("/"), model, timeout

    def _call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:  # TF Serving's {"error": ...} with its code
            raise GiMeFiveError(f"{path}: HTTP {error.code}: {error.read().decode()}") from None
        except urllib.error.URLError as error:
            raise GiMeFiveError(f"cannot reach {self.url}: {error.reason}") from None
        return json.loads(text) if text.lstrip().startswith(("{", "[")) else text

    def status(self):
        """GET /v1/models/<model>: its versions and their state."""
        return self._call(f"/v1/models/{self.model}")

    def metadata(self):
        """GET /v1/models/<model>/metadata: every signature's inputs and outputs."""
        return self._call(f"/v1/models/{self.model}/metadata")

    def predict(self, images, signature=None):
        """POST :predict with images (encoded bytes, file paths or RGB arrays; already face
        crops) in the row format; the list of predictions (probabilities, label, label_id)."""
        body = {"instances": [{"b64": _b64(image)} for image in images]}
        if signature:
            body["signature_name"] = signature
        return self._call(f"/v1/models/{self.model}:predict", body)["predictions"]

    def analyze(self, image, explain=False):
        """POST /v1/analyze with a whole photo (bytes, a path or an RGB array): the answer with
        every face's record (and with `explain`, its heatmap overlay as a base64 PNG)."""
        return self._call("/v1/analyze", {"image": {"b64": _b64(image)}, "explain": explain})

    def ready(self):
        """True once the model is loaded and warmed up (/readyz)."""
        try:
            self._call("/readyz")
        except GiMeFiveError:  # 503 while warming up, or nothing listening yet
            return False
        return True

    def metrics(self):
        """The Prometheus text of /metrics."""
        return self._call("/metrics")


def _b64(image):
    """base64 of an encoded image: bytes as given, a file's bytes, or an RGB array as PNG."""
    if isinstance(image, (str, pathlib.Path)):
        image = pathlib.Path(image).read_bytes()
    elif not isinstance(image, bytes):
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        image = buffer.getvalue()
    return base64.b64encode(image).decode()


def overlay_images(answer):
    """The heatmap overlays (RGB arrays) of an `analyze(..., explain=True)` answer's faces."""
    from gimefive_tf.pictures import decode_picture

    return [decode_picture(base64.b64decode(face["overlay_png"]))
            for face in answer["faces"] if "overlay_png" in face]


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class Server:
    """`python -m gimefive_tf.serve ARGS` in its own process on a free port, ready when built;
    `stop()` (or leaving a `with` block) ends it."""

    def __init__(self, *args, port=None, timeout=180):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a full
        # one would stall it; the file says why when it stops
        self.errors = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gimefive_tf.serve", "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL, stderr=self.errors, text=True)
        client, deadline = Client(self.url, timeout=2), time.monotonic() + timeout
        while not client.ready():
            if self.process.poll() is not None:
                self.errors.seek(0)
                raise GiMeFiveError(f"the server stopped: {self.errors.read().strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise GiMeFiveError(f"the server was not ready within {timeout} s")
            time.sleep(0.5)

    def client(self, model="gimefive"):
        return Client(self.url, model)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.errors.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
