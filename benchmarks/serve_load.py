"""Load on a local server: 50 concurrent clients for 60 s, batching on and off.

Starts `python -m gimefive_tf.serve` on 127.0.0.1 (a free port) for each setting, waits until
it is ready, then runs the clients (asyncio + httpx, one process) against
    predict: POST /v1/models/gimefive:predict, one b64 JPEG face per request
    analyze: POST /v1/analyze, one 640x480 photo with a face per request
and prints JSON: requests/s, p50/p99 latency, errors (non-200 answers), dropped requests
(no answer: timeouts, refused connections), rows per model call, and the server's resident
memory after warm-up, after the run, and its growth. Localhost only; bounded in time.

With --stalled N each setting runs twice in one server: unloaded, then with N hostile
connections held open all the while (each declares a body, sends a few bytes of it and waits;
one the server closes is opened again), and reports the clients' p99 against the unloaded run's
and how the server ended the stalled connections (status, seconds held, any it never closed).

    python benchmarks/serve_load.py --clients 50 --seconds 60
    python benchmarks/serve_load.py --endpoints analyze --clients 20 --seconds 30 --stalled 50
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


async def stalled_connections(port, count, stop, hold_limit):
    """`count` connections that each declare a 100 kB body, send 10 bytes and wait, reopened
    when the server closes them, until `stop` (a monotonic time). Returns how the server ended
    them: their statuses, the longest hold, and how many were still open at `stop` after being
    held longer than `hold_limit` seconds (never closed by the server)."""
    statuses, held, never_closed = {}, [], 0

    async def slot():
        nonlocal never_closed
        while time.monotonic() < stop:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened = time.monotonic()
            writer.write(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg"
                         b"\r\nContent-Length: 100000\r\n\r\n\xff\xd8" + b"\0" * 8)
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(), max(0.01, stop - opened))
            except asyncio.TimeoutError:  # still open at the end of the run
                never_closed += time.monotonic() - opened > hold_limit
                writer.close()
                return
            status = answer.split(b" ", 2)[1].decode() if answer else "closed"
            statuses[status] = statuses.get(status, 0) + 1
            held.append(time.monotonic() - opened)
            writer.close()

    await asyncio.gather(*(slot() for _ in range(count)))
    return {"stalled_connections": count, "stalled_answers": statuses,
            "stalled_closed": len(held), "stalled_max_held_s": round(max(held), 2) if held
            else None, "stalled_never_closed": never_closed}


async def under_attack(url, kind, bodies, args):
    """The clients' figures with args.stalled hostile connections held open meanwhile."""
    port = int(url.rsplit(":", 1)[1])
    stop = time.monotonic() + args.seconds
    attack = asyncio.ensure_future(stalled_connections(port, args.stalled, stop + 1,
                                                       hold_limit=args.body_timeout_s + 2))
    await asyncio.sleep(0.5)  # the stalled connections are in place before the clients start
    figures = await clients(url, kind, bodies, args.clients, args.seconds, args.timeout)
    return {**figures, **await attack}


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
    command = [sys.executable, "-m", "gimefive_tf.serve", "--port", str(port),
               "--body-timeout-s", str(args.body_timeout_s)]
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
        if args.stalled:  # the same server again, under attack
            attacked = asyncio.run(under_attack(url, kind, bodies, args))
            figures = {"unloaded": figures, "stalled": attacked,
                       "p99_ratio": round(attacked["p99_ms"] / figures["p99_ms"], 2)
                       if attacked["p99_ms"] and figures["p99_ms"] else None}
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
    parser.add_argument("--batching", default="on,off", help="settings to run (on,off)")
    parser.add_argument("--stalled", type=int, default=0,
                        help="also run each setting with this many stalled connections (0)")
    parser.add_argument("--body-timeout-s", type=float, default=5.0,
                        help="the server's --body-timeout-s (5)")
    args = parser.parse_args(argv)
    face_bodies, photos = payloads(200)
    results = []
    for kind in args.endpoints.split(","):
        for batching in [setting == "on" for setting in args.batching.split(",")]:
            results.append(run_setting(batching, kind,
                                       face_bodies if kind == "predict" else photos, args))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"runs": results}, indent=2))


if __name__ == "__main__":
    main()
