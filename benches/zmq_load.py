#!/usr/bin/env python3
"""Socket throughput of `idcardd serve` next to a bare ZeroMQ echo, with concurrent pyzmq clients.

Each client is its own process with its own DEALER socket, sending one request and waiting for
its reply before the next (a kiosk's pattern). Reported: requests per second over all clients,
and the p50/p99 round-trip latency.

    # start everything itself (release build recommended), 8 clients, 10 s per case in 5
    # alternating rounds (median round reported):
    python3 benches/zmq_load.py --idcardd target/release/idcardd --clients 8 --seconds 10

    # or against a running endpoint:
    python3 benches/zmq_load.py --endpoint ipc:///tmp/s.sock --method system.health

The echo baseline is `idcardd bench zmq-echo`, a ROUTER that sends every message straight back,
on the same engine as the daemon (libzmq through the `zmq` crate, one thread polling the socket,
reading in batches, sending without waiting): the ratio shows what the JSON-RPC layer (parsing,
dispatch, the method, the reply) costs on top of the socket. With --idcardd each case also
reports the serving process's own CPU time per request (utime + stime from /proc), which moves
far less with the machine's load than requests per second do.
For card.info every client has its own simulated reader (`--readers sim:N`), since a reader
serves one operation at a time.
"""

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time

import zmq


def client(endpoint, request, seconds, start_at, out):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    # Warm the connection before the clock starts.
    sock.send(request)
    sock.recv_multipart()
    while time.time() < start_at:
        time.sleep(0.001)
    latencies = []
    errors = 0
    end = start_at + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        sock.send(request)
        reply = sock.recv_multipart()
        latencies.append(time.perf_counter() - t0)
        if b'"error"' in reply[-1][:200]:
            errors += 1
    sock.close()
    ctx.term()
    out.put((latencies, errors))


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


def run_case(endpoint, requests, seconds):
    """requests: one request (bytes) per client."""
    out = mp.Queue()
    start_at = time.time() + 1.0
    procs = [
        mp.Process(target=client, args=(endpoint, r, seconds, start_at, out)) for r in requests
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(l for r in results for l in r[0])
    errors = sum(r[1] for r in results)
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def request_bytes(method, params=None, rid=1):
    r = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        r["params"] = params
    return json.dumps(r).encode()


def wait_for(path, proc, seconds=60):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited early with {proc.returncode}")
        if time.time() > deadline:
            sys.exit(f"{path} did not appear")
        time.sleep(0.02)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# (case, the echo it is compared with).
PAIRS = [
    ("system.health", "echo (system.health request bytes)"),
    ("card.info (one sim reader per client)", "echo (card.info request bytes)"),
]


def run_all(args):
    """Starts the echo and the daemon side by side, then alternates the cases in rounds so a
    change in machine load hits every case alike; reports each case's median round."""
    tmp = tempfile.mkdtemp(prefix="zmq-load-")
    echo_sock = os.path.join(tmp, "echo.sock")
    sock = os.path.join(tmp, "s.sock")
    echo = subprocess.Popen(
        [args.idcardd, "bench", "zmq-echo", "--endpoint", f"ipc://{echo_sock}"]
    )
    daemon = subprocess.Popen(
        [
            args.idcardd, "serve", "--readers", f"sim:{args.clients}",
            "--state-dir", os.path.join(tmp, "state"),
            "--endpoint", f"ipc://{sock}", "--events", f"ipc://{os.path.join(tmp, 'e.sock')}",
        ]
    )
    try:
        wait_for(echo_sock, echo)
        wait_for(sock, daemon)
        health = [request_bytes("system.health", {})] * args.clients
        info = [request_bytes("card.info", {"reader": f"sim:{i}"}) for i in range(args.clients)]
        cases = [
            ("echo (system.health request bytes)", f"ipc://{echo_sock}", health, echo.pid),
            ("system.health", f"ipc://{sock}", health, daemon.pid),
            ("echo (card.info request bytes)", f"ipc://{echo_sock}", info, echo.pid),
            ("card.info (one sim reader per client)", f"ipc://{sock}", info, daemon.pid),
        ]
        rounds = {name: [] for name, _, _, _ in cases}
        for _ in range(args.rounds):
            for name, endpoint, requests, pid in cases:
                cpu = cpu_seconds(pid)
                r = run_case(endpoint, requests, args.seconds / args.rounds)
                # Includes the clients' warm-up requests, a handful per case.
                r["server_cpu_us"] = (cpu_seconds(pid) - cpu) * 1e6 / max(1, r["requests"])
                rounds[name].append(r)
    finally:
        stop(daemon)
        stop(echo)
    # Each case next to the echo of the same round (run seconds apart): the machine's load,
    # which moves the whole rounds by 20-50 % on a shared 2-core VM, cancels in the ratio.
    paired_ratios = {
        name: sorted(
            r["requests_per_s"] / e["requests_per_s"] for r, e in zip(rounds[name], rounds[echo])
        )
        for name, echo in PAIRS
    }
    rows = {}
    for name, results in rounds.items():
        paired = paired_ratios.get(name)
        results.sort(key=lambda r: r["requests_per_s"])
        median = dict(results[len(results) // 2])
        median["rounds_requests_per_s"] = [round(r["requests_per_s"]) for r in results]
        median["server_cpu_us_median"] = sorted(r["server_cpu_us"] for r in results)[
            len(results) // 2
        ]
        if paired:
            median["paired_ratios"] = [round(x, 3) for x in paired]
            median["paired_ratio_median"] = paired[len(paired) // 2]
        rows[name] = median
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idcardd", help="binary to start the echo and the daemon with")
    ap.add_argument("--endpoint", help="an already running endpoint (with --method)")
    ap.add_argument("--method", default="system.health")
    ap.add_argument("--params", default=None, help='JSON params; "{client}" is the client index')
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (with --idcardd)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.idcardd:
        rows = run_all(args)
    elif args.endpoint:
        # "{client}" in --params becomes each client's index (one reader per client).
        requests = [
            request_bytes(
                args.method,
                json.loads(args.params.replace("{client}", str(i))) if args.params else None,
            )
            for i in range(args.clients)
        ]
        rows = {args.method: run_case(args.endpoint, requests, args.seconds)}
    else:
        ap.error("give --idcardd or --endpoint")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.clients} clients, {args.seconds:g} s per case, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(
        f"{'case':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu us':>7}"
        "  rounds req/s"
    )
    for name, r in rows.items():
        cpu = r.get("server_cpu_us_median")
        print(
            f"{name:42} {r['requests_per_s']:9.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f}"
            f" {r['errors']:7} {'' if cpu is None else f'{cpu:7.1f}':>7}"
            f"  {r.get('rounds_requests_per_s', '')}"
        )
    for name, echo in PAIRS:
        if name in rows and echo in rows:
            ratio = rows[name]["requests_per_s"] / rows[echo]["requests_per_s"]
            paired = rows[name].get("paired_ratios")
            print(
                f"{name}: {100 * ratio:.0f} % of the echo's requests/s (median rounds); "
                f"round by round {100 * rows[name]['paired_ratio_median']:.0f} % "
                f"(median of {', '.join(f'{100 * x:.0f}' for x in paired)})"
            )


if __name__ == "__main__":
    main()
