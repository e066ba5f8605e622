#!/usr/bin/env python3
"""Checks the layering docs/architecture.md describes; exits 1 on a violation.

1. Between crates: each crate's normal dependencies (`cargo metadata`) stay inside what its
   layer may use: the issuance core never depends on the shell's transport, CLI or plotting
   crates, nor on the daemon; apdu never on the simulator; no library crate on test-support
   (the integration tests' helpers).
2. Inside a crate: the graph of its top-level modules (an edge A -> B when a file of module A
   names `crate::B`) has no cycle. A child module naming its parent (`super::`) is the module
   tree itself, not an edge.
3. No test key on the host side (issue 15): the code of the issuance core, the key store and
   the daemon (unit tests excepted) never names the simulator's public test masters
   (`cardsim::fixtures`, `TestMasters`, `TEST_PERSO_MASTER`...): their keys come from the token.

Run from the repository root: `python3 scripts/check_layers.py`.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

# Crates a layer must never depend on (directly or through another crate of the workspace).
# test-support (the integration tests' shared helpers) is a dev-dependency only.
FORBIDDEN = {
    "apdu": {"cardsim", "issuance", "idcardd", "qa", "matcher", "test-support"},
    "cardsim": {"issuance", "idcardd", "qa", "matcher", "test-support"},
    "matcher": {"apdu", "cardsim", "issuance", "idcardd", "qa", "plotters", "test-support"},
    "qa": {"apdu", "cardsim", "issuance", "idcardd", "zmq", "zeromq", "clap", "test-support"},
    "idcardd": {"test-support"},
    "keystore": {"cardsim", "issuance", "idcardd", "qa", "matcher", "test-support"},
    # The learned extractor: only the composition root opens it; the domain sees the
    # matcher's MinutiaeExtractor trait.
    "leader": {"apdu", "cardsim", "issuance", "idcardd", "qa", "keystore", "test-support"},
    "issuance": {"idcardd", "qa", "zmq", "zeromq", "clap", "plotters", "indicatif", "signal-hook",
                 "test-support", "leader", "ort"},
}
LIBS = {"apdu": "apdu/src", "cardsim": "cardsim/src", "matcher": "matcher/src",
        "issuance": "issuance/src", "qa": "qa/src", "idcardd": "daemon/src",
        "keystore": "keystore/src", "leader": "leader/src"}
# Host-side sources that must not name the simulator's public test keys.
HOST_SIDE = ["issuance/src", "keystore/src", "daemon/src"]
TEST_KEYS = re.compile(r"cardsim::fixtures|\bTestMasters\b|\bSoftwareMasters\b|TEST_(PERSO|TERMINAL)_MASTER|test_(perso|terminal)_master")


def test_keys_on_host_side():
    """(file, line number, line) of every host-side line outside unit tests naming a test key."""
    found = []
    for src in HOST_SIDE:
        for path in sorted(Path(src).rglob("*.rs")):
            text = path.read_text().split("#[cfg(test)]")[0]
            for n, line in enumerate(text.splitlines(), 1):
                if not line.lstrip().startswith("//") and TEST_KEYS.search(line):
                    found.append((path, n, line.strip()))
    return found


def dependency_closure(metadata, name):
    """Every package `name` depends on through normal (non-dev, non-build) dependencies."""
    by_id = {p["id"]: p for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    root = next(p["id"] for p in metadata["packages"] if p["name"] == name
                and p["id"] in metadata["workspace_members"])
    seen, stack = set(), [root]
    while stack:
        for dep in nodes[stack.pop()]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                stack.append(dep["pkg"])
    return {by_id[i]["name"] for i in seen}


def module_of(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = rel.parts
    if parts[0] in ("lib", "main"):
        return None
    return parts[0]


def module_cycles(src):
    src = Path(src)
    edges = {}
    modules = {module_of(src, p) for p in src.rglob("*.rs")} - {None}
    crate_ref = re.compile(r"\bcrate::(?:\{([^}]*)\}|([a-z_][a-z0-9_]*))")
    for path in src.rglob("*.rs"):
        mod = module_of(src, path)
        if mod is None:
            continue
        text = path.read_text().split("#[cfg(test)]")[0]
        # Doc comments and unit tests (at the end of a file) are not the module's code.
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        for group, single in crate_ref.findall(code):
            names = [single] if single else [n.strip().split("::")[0] for n in group.split(",")]
            for target in names:
                # Names re-exported at the crate root (`crate::Error`) are not module edges.
                if target in modules and target != mod:
                    edges.setdefault(mod, set()).add(target)
    # Tarjan's strongly connected components.
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out, edges


def main():
    metadata = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked"]))
    failed = False
    for crate, banned in FORBIDDEN.items():
        bad = sorted(dependency_closure(metadata, crate) & banned)
        if bad:
            failed = True
            print(f"layers: {crate} depends on {', '.join(bad)}")
    for crate, src in LIBS.items():
        cycles, edges = module_cycles(src)
        for c in cycles:
            failed = True
            print(f"layers: import cycle between modules of {crate}: {' <-> '.join(c)}")
        n_edges = sum(len(v) for v in edges.values())
        print(f"layers: {crate}: {len(edges)} modules with imports, {n_edges} edges, {len(cycles)} cycles")
    for path, n, line in test_keys_on_host_side():
        failed = True
        print(f"layers: {path}:{n} names a public test key on the host side: {line}")
    if failed:
        sys.exit(1)
    print("layers: ok")


if __name__ == "__main__":
    main()
