"""A small client library for the idcardd JSON-RPC API over ZeroMQ (pyzmq).

    from idcardd_client import IdcarddClient, IdcarddError
    client = IdcarddClient("ipc:///run/idcardd/idcardd.sock")
    print(client.call("system.health"))
    result, frames = client.call_frames("matcher.extract", {"binary": True}, [png_bytes])

Requests are JSON-RPC 2.0 in the first frame of a multipart message; binary data (scans,
templates) travels in the frames after it. Errors come back as IdcarddError with the stable
numeric code and snake_case name of docs/api.md.
"""

import itertools
import json

import zmq


class IdcarddError(Exception):
    """A JSON-RPC error reply: `code` (number), `name` (stable snake_case), `message`, `data`."""

    def __init__(self, code, name, message, data=None):
        super().__init__(f"{name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message
        self.data = data or {}


class IdcarddClient:
    """One DEALER connection to the daemon. Not thread-safe: use one client per thread."""

    def __init__(self, endpoint, timeout_ms=60000, context=None):
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self._ids = itertools.count(1)

    def close(self):
        self.socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call_frames(self, method, params=None, frames=()):
        """Calls `method`; returns (result, reply binary frames) or raises IdcarddError."""
        request_id = next(self._ids)
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        self.socket.send_multipart([json.dumps(request).encode()] + [bytes(f) for f in frames])
        while True:
            if not self.socket.poll(self.timeout_ms):
                raise TimeoutError(f"{method}: no reply from {self.endpoint} in {self.timeout_ms} ms")
            reply = self.socket.recv_multipart()
            response = json.loads(reply[0])
            # A late reply to an earlier request that timed out on our side: skip it.
            if response.get("id") not in (request_id, None):
                continue
            break
        if "error" in response:
            error = response["error"]
            data = error.get("data") or {}
            raise IdcarddError(error.get("code"), data.get("name"), error.get("message"), data)
        return response["result"], reply[1:]

    def call(self, method, params=None, frames=()):
        """Calls `method`; returns its result or raises IdcarddError."""
        return self.call_frames(method, params, frames)[0]

    def subscribe(self, events_endpoint, topics=("",)):
        """Yields (topic, body) events from the daemon's PUB socket, forever.

        `topics` are prefixes: ("card.",) gets card.inserted and card.removed."""
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(events_endpoint)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        try:
            while True:
                topic, body = sub.recv_multipart()[:2]
                yield topic.decode(), json.loads(body)
        finally:
            sub.close(linger=0)
