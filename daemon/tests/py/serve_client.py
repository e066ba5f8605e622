#!/usr/bin/env python3
"""Drives a running `idcardd serve` through examples/idcardd_client.py (pyzmq) and kiosk.py;
run by daemon/tests/serve.rs. Exits non-zero with a message at the first failed check."""

import argparse
import json
import os
import subprocess
import sys

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "..", "examples")
sys.path.insert(0, EXAMPLES)
from idcardd_client import IdcarddClient, IdcarddError  # noqa: E402


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def expect_error(client, name, method, params=None, frames=()):
    try:
        result = client.call(method, params, frames)
    except IdcarddError as e:
        check(e.name == name, f"{method}: expected {name}, got {e.name} ({e.message})")
        check(isinstance(e.code, int), f"{method}: numeric code")
        return e
    check(False, f"{method}: expected {name}, got result {result}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    scan = lambda name: open(os.path.join(args.fixtures, name), "rb").read()  # noqa: E731

    with IdcarddClient(args.endpoint, timeout_ms=60000) as client:
        health = client.call("system.health")
        check(health["status"] == "ok", f"health: {health}")
        version = client.call("system.version")
        check("matcher.compare" in version["methods"], f"version: {version}")
        readers = client.call("readers.list")["readers"]
        check([r["name"] for r in readers] == ["sim:0", "sim:1"], f"readers: {readers}")
        info = client.call("card.info", {"reader": "sim:0"})
        check(info["serial"] == readers[0]["serial"], f"card.info: {info}")

        templates = []
        for name in ["1_1.png", "1_2.png", "2_1.png"]:
            result, frames = client.call_frames("matcher.extract", {"binary": True}, [scan(name)])
            check(result["minutiae"] >= 10 and len(frames) == 1, f"extract {name}: {result}")
            templates.append(frames[0])
        compared = client.call("matcher.compare", {"fmr": 0.001}, templates)
        check(compared["scores"][0] > compared["scores"][1], f"compare: {compared}")
        check(compared["matches"][1] is False, f"impostor refused: {compared}")

        # The structured errors a kiosk switches on.
        expect_error(client, "method_not_found", "card.explode")
        expect_error(client, "invalid_params", "card.info", {"reader": 3})
        expect_error(client, "reader_not_found", "card.info", {"reader": "sim:5"})
        expect_error(client, "invalid_params", "matcher.extract", {}, [b"\x89PNG garbage"])
        # Raw frames: bad JSON and a wrong version.
        client.socket.send_multipart([b"{oops"])
        reply = json.loads(client.socket.recv_multipart()[0])
        check(reply["error"]["data"]["name"] == "parse_error" and reply["id"] is None, f"{reply}")
        client.socket.send_multipart([b'{"jsonrpc":"1.0","id":5,"method":"system.health"}'])
        reply = json.loads(client.socket.recv_multipart()[0])
        check(reply["error"]["data"]["name"] == "invalid_request" and reply["id"] == 5, f"{reply}")
        check(client.call("system.health")["status"] == "ok", "health after errors")

    # A REQ socket (strict send/recv alternation, empty delimiter) works too.
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 60000)
    req.connect(args.endpoint)
    req.send_json({"jsonrpc": "2.0", "id": "r1", "method": "system.health"})
    reply = req.recv_json()
    check(reply["id"] == "r1" and reply["result"]["status"] == "ok", f"REQ: {reply}")
    req.close()

    # The PUB socket accepts subscribers.
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(args.events)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.close()

    # The kiosk CLI on top of the library.
    kiosk = os.path.join(EXAMPLES, "kiosk.py")
    out = subprocess.run(
        [sys.executable, kiosk, "--endpoint", args.endpoint, "card-info", "sim:1"],
        capture_output=True, text=True, timeout=120,
    )
    check(out.returncode == 0, f"kiosk card-info: {out.stderr}")
    check(json.loads(out.stdout)["serial"] == readers[1]["serial"], f"kiosk: {out.stdout}")
    out = subprocess.run(
        [sys.executable, kiosk, "--endpoint", args.endpoint, "card-info", "sim:9"],
        capture_output=True, text=True, timeout=120,
    )
    check(out.returncode == 2 and "reader_not_found" in out.stderr, f"kiosk error: {out.stderr}")
    print("all checks passed")


if __name__ == "__main__":
    main()
