"""Server-side batching, as TF Serving's `--enable_batching`: requests for the same signature
that arrive close together are merged into one model call.

One worker thread owns the model calls. It takes the oldest request, then keeps taking requests
for the same (version, signature) until `max_batch_size` rows are queued or `timeout_ms` has
passed since the first, concatenates their inputs, runs the signature once and hands each
request its rows. Requests for other signatures wait for the next call, in order. Callers get a
`concurrent.futures.Future`, so both the event loop (`asyncio.wrap_future`) and worker threads
(the face pipeline of /v1/analyze) can wait on it.
"""

import collections
import concurrent.futures
import threading
import time

import numpy as np


class Batcher:
    def __init__(self, run, max_batch_size=32, timeout_ms=5.0, on_batch=None):
        """run(key, {input: array}) -> {output: array}, all batched along the first axis;
        on_batch(rows): told the size of every merged call (for /metrics)."""
        self.run, self.on_batch = run, on_batch
        self.max_batch_size, self.timeout = int(max_batch_size), float(timeout_ms) / 1000
        self._queue = collections.deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="gimefive-batcher", daemon=True)
        self._thread.start()

    def submit(self, key, arrays, wait=True):
        """A Future of `run(key, arrays)`'s outputs, computed together with its neighbours.
        wait=False: merge with what is queued now but wait for no one (the face pipeline's
        crops: its few threads spend most of their time detecting, so a partner is rarely
        coming and waiting for one only adds latency)."""
        future = concurrent.futures.Future()
        rows = len(next(iter(arrays.values())))
        with self._ready:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append((key, arrays, rows, future, wait, time.monotonic()))
            self._ready.notify()
        return future

    def close(self):
        """Finish what is queued, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join()

    def _take(self):
        """The next group: requests of one key, oldest first, up to max_batch_size rows."""
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return None
            key, _, rows, _, wait, arrived = self._queue[0]
            deadline = arrived + (self.timeout if wait else 0)
            while rows < self.max_batch_size and not self._closed:
                queued = sum(item[2] for item in self._queue if item[0] == key)
                if queued >= self.max_batch_size:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
                rows = queued
            group, total, kept = [], 0, collections.deque()
            for item in self._queue:
                if item[0] == key and (not group or total + item[2] <= self.max_batch_size):
                    group.append(item[:4])
                    total += item[2]
                else:
                    kept.append(item)
            self._queue = kept
            return key, group

    def _loop(self):
        while True:
            taken = self._take()
            if taken is None:
                return
            key, group = taken
            group = [item for item in group if item[3].set_running_or_notify_cancel()]
            if not group:
                continue
            try:
                merged = {name: np.concatenate([arrays[name] for _, arrays, _, _ in group])
                          for name in group[0][1]}
                outputs = self.run(key, merged)
                total = sum(rows for _, _, rows, _ in group)
                if any(np.ndim(a) == 0 or len(a) != total for a in outputs.values()):
                    raise ValueError("the model's outputs are not batched along their first "
                                     "axis")
                if self.on_batch:
                    self.on_batch(total)
            except Exception as error:
                if len(group) == 1:
                    group[0][3].set_exception(error)
                else:  # one bad request must not fail its neighbours: each alone, once more
                    for key_, arrays, rows, future in group:
                        self._run_alone(key_, arrays, rows, future)
                continue
            start = 0
            for _, _, rows, future in group:
                future.set_result({n: a[start:start + rows] for n, a in outputs.items()})
                start += rows

    def _run_alone(self, key, arrays, rows, future):
        try:
            outputs = self.run(key, arrays)
        except Exception as error:
            future.set_exception(error)
            return
        if self.on_batch:
            self.on_batch(rows)
        future.set_result(outputs)
