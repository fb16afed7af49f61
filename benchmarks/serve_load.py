"""Load on a local server: 50 concurrent clients for 60 s, batching on and off.

Starts `python -m gimefive_tf.serve` on 127.0.0.1 (a free port) for each setting, waits until
it is ready, then runs the clients (asyncio + httpx, one process) against
    predict: POST /v1/models/gimefive:predict, one b64 JPEG face per request
    analyze: POST /v1/analyze, one 640x480 photo with a face per request
and prints JSON: requests/s, p50/p99 latency, errors (non-200 answers), dropped requests
(no answer: timeouts, refused connections), rows per model call, and the server's resident
memory after warm-up, after the run, and its growth. Localhost only; bounded in time.

    python benchmarks/serve_load.py --clients 50 --seconds 60
"""

import argparse
import asyncio
import base64
import json
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def payloads(count, seed=0):
    """b64 JPEG faces (the validation split when the shared data is there, else crops of the
    astronaut) and 640x480 JPEG photos with one of them placed in a scene."""
    import cv2

    from gimefive_tf.scenes import random_scene

    rng = np.random.default_rng(seed)
    data = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "RAF-DB"
    if data.is_dir():
        from gimefive_tf.data import load_arrays, read_dataset, stratified_split

        _, validation = stratified_split(read_dataset(data), 0.1, seed=0)
        chosen = np.sort(rng.permutation(len(validation))[:count])
        faces = load_arrays(validation.subset(chosen), 64)[0]
    else:
        from skimage import data as images

        astronaut = images.astronaut()
        faces = np.stack([cv2.resize(astronaut[30 + i:190 + i, 160:320], (64, 64))
                          for i in range(count)])

    def jpeg(rgb):
        return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()

    face_bodies = [json.dumps({"instances": [{"b64": base64.b64encode(jpeg(f)).decode()}]})
                   for f in faces]
    photos = [jpeg(random_scene(f, rng).picture) for f in faces[:min(count, 40)]]
    return face_bodies, photos


async def clients(url, kind, bodies, count, seconds, timeout):
    import httpx

    latencies, errors, dropped = [], 0, 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)

    async def client(index, session):
        nonlocal errors, dropped
        turn = index
        while time.monotonic() < stop:
            body = bodies[turn % len(bodies)]
            turn += count
            started = time.perf_counter()
            try:
                if kind == "predict":
                    response = await session.post(url + "/v1/models/gimefive:predict",
                                                  content=body,
                                                  headers={"content-type": "application/json"})
                else:
                    response = await session.post(url + "/v1/analyze",
                                                  files={"image": ("photo.jpg", body)})
            except httpx.HTTPError:
                dropped += 1
                continue
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as session:
        began = time.monotonic()
        await asyncio.gather(*(client(i, session) for i in range(count)))
        elapsed = time.monotonic() - began
    latencies = np.array(latencies) * 1000
    return {"requests": len(latencies) + dropped, "answered": len(latencies),
            "errors": int(errors), "dropped": int(dropped),
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None}


def batch_rows(url):
    import httpx

    text = httpx.get(url + "/metrics").text
    values = {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("gimefive_batch_rows_")}
    return values.get("gimefive_batch_rows_sum", 0), values.get("gimefive_batch_rows_count", 0)


def run_setting(batching, kind, bodies, args):
    import httpx
    import psutil

    port = free_port()
    command = [sys.executable, "-m", "gimefive_tf.serve", "--port", str(port)]
    if not batching:
        command.append("--no-batching")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        process = psutil.Process(server.pid)
        start_mb = process.memory_info().rss / 2 ** 20
        before = batch_rows(url)
        figures = asyncio.run(clients(url, kind, bodies, args.clients, args.seconds,
                                      args.timeout))
        after = batch_rows(url)
        end_mb = process.memory_info().rss / 2 ** 20
        calls = after[1] - before[1]
        return {"endpoint": kind, "batching": batching, "clients": args.clients,
                "seconds": args.seconds, **figures,
                "rows_per_model_call": round((after[0] - before[0]) / calls, 2) if calls else None,
                "memory_start_mb": round(start_mb), "memory_end_mb": round(end_mb),
                "memory_growth": round(end_mb / start_mb - 1, 4)}
    finally:
        server.terminate()
        server.wait(timeout=60)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=60, help="a request without an "
                        "answer after this many seconds counts as dropped (60)")
    parser.add_argument("--endpoints", default="predict,analyze")
    args = parser.parse_args(argv)
    face_bodies, photos = payloads(200)
    results = []
    for kind in args.endpoints.split(","):
        for batching in (True, False):
            results.append(run_setting(batching, kind,
                                       face_bodies if kind == "predict" else photos, args))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"runs": results}, indent=2))


if __name__ == "__main__":
    main()
