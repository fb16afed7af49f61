"""The server's HTTP/1.1 connections: uvicorn's h11 protocol, made to answer every mistake as
JSON and never to wait on a client forever.

uvicorn answers a request it cannot parse (a negative or non-numeric Content-Length, a bad chunk
size, a malformed header) with a plain-text 400 and a warning on stderr, and waits without limit
for request headers that never finish. Here that 400 is JSON {"error"} like every other error,
the warning is a JSON line on stdout beside the access log, and headers that have not arrived
`timeout_s` after the connection opened (or after its last answer) end the connection, with a
JSON 408 when part of a request had come. Bodies are bounded by `app.Guard`.
"""

import datetime
import functools
import json
import logging
import sys

BODY_TIMEOUT_S = 5.0  # a request whose headers or body send nothing for this long: 408, closed


def log_time():
    """The time of a log line (UTC, milliseconds), as every JSON line of the server has it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class JSONLines(logging.Formatter):
    """A log record as one JSON line (the server's stdout is JSON lines)."""

    def format(self, record):
        return json.dumps({"time": log_time(), "level": record.levelname.lower(),
                           "message": record.getMessage()})


@functools.lru_cache(maxsize=None)
def connection_log():
    """The protocol's own log: JSON lines on stdout."""
    logger = logging.getLogger("gimefive_tf.serve.connections")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONLines())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def raw_response(status, reason, message):
    """A whole HTTP/1.1 response with a JSON error body that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


@functools.lru_cache(maxsize=None)
def http_protocol(timeout_s=BODY_TIMEOUT_S):
    """uvicorn's h11 protocol class with JSON errors and a request-header deadline of
    `timeout_s`; pass it as uvicorn's `http`."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.logger = connection_log()
            self.header_deadline = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self.arm_header_deadline()

        def connection_lost(self, exc):
            if self.header_deadline is not None:
                self.header_deadline.cancel()
            super().connection_lost(exc)

        def on_response_complete(self):
            super().on_response_complete()
            self.arm_header_deadline()

        def arm_header_deadline(self):
            if self.header_deadline is not None:
                self.header_deadline.cancel()
            self.header_deadline = self.loop.call_later(timeout_s, self.headers_overdue)

        def headers_overdue(self):
            """No whole request line and headers within the deadline: a client that started
            one is told so; an idle connection is just closed (as keep-alive's timeout does)."""
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return  # a request is under way: the Guard bounds its body
            if self.conn.trailing_data[0]:
                self.logger.warning("request headers incomplete after %g s", timeout_s)
                self.transport.write(raw_response(
                    408, "Request Timeout",
                    f"the request's headers did not arrive within {timeout_s:g} s"))
            self.transport.close()

        def send_400_response(self, msg):
            self.transport.write(raw_response(
                400, "Bad Request", "the request is not valid HTTP/1.1 (its request line, a "
                "header, Content-Length or a chunk size)"))
            self.transport.close()

    return GuardedH11Protocol
