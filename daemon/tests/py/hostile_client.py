#!/usr/bin/env python3
"""Hostile and measuring pyzmq clients for daemon/tests/hostile.rs (issue 18).

    flood  --endpoint E --requests N [--churn M] [--id-bytes K] [--hold S]
        One DEALER sends N requests and never reads a reply, while M other clients connect,
        send one request and disconnect (interleaved with the flood). Prints one JSON line when
        the flood is sent, keeps its socket open, unread, for S seconds, then a second line.
    attack --endpoint E --method M --params-file F [--frame-file B] [--concurrent K] [--repeat N]
        Sends K copies of one crafted request at once (JSON params from F, file B as binary
        frame 0), reads every reply (10 s each at most), N times; prints one JSON line with the
        replies' error names, the largest reply in bytes and the slowest reply in ms.
    probe  --endpoint E --seconds S [--method M] [--params JSON]
        A well-behaved DEALER: one request at a time for S seconds; prints a JSON line with the
        count, p50/p99/max latency in ms, error names and replies lost (none within 2 s).
"""

import argparse
import json
import sys
import time

import zmq


def request(method, rid, params=None):
    r = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        r["params"] = params
    return json.dumps(r).encode()


def flood(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    # Never hang the test: a send that cannot go out in 10 s is counted, not waited for.
    sock.setsockopt(zmq.SNDTIMEO, 10000)
    sock.connect(args.endpoint)
    pad = "x" * args.id_bytes
    every = max(1, args.requests // args.churn) if args.churn else 0
    sent = timeouts = churned = 0
    started = time.time()
    for i in range(args.requests):
        rid = f"{pad}{i}" if args.id_bytes else i
        try:
            sock.send(request(args.method, rid))
            sent += 1
        except zmq.Again:
            timeouts += 1
        if every and i % every == 0:
            # Connect, ask, and go away without reading: the reply finds the peer gone.
            c = ctx.socket(zmq.DEALER)
            c.setsockopt(zmq.LINGER, 0)
            c.connect(args.endpoint)
            c.send(request("system.health", f"churn-{i}"))
            c.close()
            churned += 1
    line = {"sent": sent, "send_timeouts": timeouts, "churned": churned,
            "seconds": round(time.time() - started, 3)}
    print(json.dumps(line), flush=True)
    time.sleep(args.hold)
    sock.close()
    ctx.term()
    print(json.dumps({"closed": True}), flush=True)


def attack(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(args.endpoint)
    with open(args.params_file, "rb") as f:
        params = json.loads(f.read())
    frames = []
    if args.frame_file:
        with open(args.frame_file, "rb") as f:
            frames = [f.read()]
    names, largest, slowest, lost, n = {}, 0, 0.0, 0, 0
    for r in range(args.repeat):
        t0 = time.perf_counter()
        for k in range(args.concurrent):
            n += 1
            sock.send_multipart([request(args.method, f"attack-{r}-{k}", params)] + frames)
        for _ in range(args.concurrent):
            if not sock.poll(10000):
                lost += 1
                continue
            parts = sock.recv_multipart()
            largest = max(largest, sum(len(p) for p in parts))
            slowest = max(slowest, (time.perf_counter() - t0) * 1000)
            reply = json.loads(parts[0])
            name = reply["error"].get("data", {}).get("name", "?") if "error" in reply else "ok"
            names[name] = names.get(name, 0) + 1
    print(json.dumps({"sent": n, "lost": lost, "names": names, "largest_reply_bytes": largest,
                      "slowest_ms": round(slowest, 1)}), flush=True)
    sock.close()
    ctx.term()


def percentile(values, p):
    if not values:
        return float("nan")
    k = min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))
    return values[k]


def probe(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(args.endpoint)
    params = json.loads(args.params) if args.params else None
    latencies, errors, lost, n = [], {}, 0, 0
    end = time.time() + args.seconds
    while time.time() < end:
        n += 1
        rid = f"probe-{n}"
        t0 = time.perf_counter()
        sock.send(request(args.method, rid, params))
        while True:
            if not sock.poll(2000):
                lost += 1
                break
            reply = json.loads(sock.recv_multipart()[0])
            if reply.get("id") != rid:
                continue  # a late reply to a request counted lost
            latencies.append((time.perf_counter() - t0) * 1000)
            if "error" in reply:
                name = reply["error"].get("data", {}).get("name", "?")
                errors[name] = errors.get(name, 0) + 1
            break
        time.sleep(args.pause)
    latencies.sort()
    print(json.dumps({
        "n": len(latencies), "lost": lost, "errors": errors,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
    }), flush=True)
    sock.close()
    ctx.term()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--endpoint", required=True)
    f.add_argument("--requests", type=int, default=100000)
    f.add_argument("--churn", type=int, default=0)
    f.add_argument("--id-bytes", type=int, default=0)
    f.add_argument("--method", default="system.health")
    f.add_argument("--hold", type=float, default=0.0)
    p = sub.add_parser("probe")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--method", default="system.health")
    p.add_argument("--params", default=None)
    p.add_argument("--pause", type=float, default=0.002, help="seconds between requests")
    a = sub.add_parser("attack")
    a.add_argument("--endpoint", required=True)
    a.add_argument("--method", required=True)
    a.add_argument("--params-file", required=True)
    a.add_argument("--frame-file", default=None)
    a.add_argument("--concurrent", type=int, default=1)
    a.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    {"flood": flood, "probe": probe, "attack": attack}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
