#!/usr/bin/env python3
"""Where our extraction loses to LEADER's: our records edited with LEADER as an oracle (issue 19).
Plain Python 3, no packages.

    idcardd extract IMAGE --dpi D --template OURS/SET/<name>.iso        # for every scan
    python3 scripts/leader_oracle.py --ours OURS --leader LEADER --out OUT MODE[,MODE...] SET...
    idcardd bench fvc OUT/SET --dpi D --iso --json                     # the edited records

OURS/SET/<name>.iso are our ISO/IEC 19794-2:2005 records, LEADER/SET/<name>.json outputs of
scripts/leader_minutiae.py. Minutiae are paired with LEADER's as scripts/leader_agreement.py
pairs them (same tolerances, same "at the edge": within two tolerances of the convex hull of both
extractors' minutiae). OUT/SET/<name>.iso is the edited record, beside a link to the scan, so
that `bench fvc --iso` scores it with the protocol and comparator of every other figure. MODE:

  same                 our records as written (the baseline of the rows below: the record's
                       whole-pixel positions and 1.4° directions cost a little against
                       `bench fvc` extracting)
  unpaired=F           our minutiae that LEADER does not find keep F times their quality (at
                       least 1): what a perfect false-minutia detector could give
  add-all=Q            LEADER's minutiae that we miss are added at quality Q: what perfect recall
                       could give
  add-edge=Q           only those at the edge of the print
  add-inner=Q          only those away from it
  leader               LEADER's minutiae alone (quality = its confidence x 100), through our
                       records' headers
  restore-all=Q        our extractor's own candidates that its filters dropped and that pair
                       with a LEADER minutia we miss, added back at quality Q ("own": the
                       quality the extractor gave them): what a perfect filter could give.
                       Needs --candidates: `idcardd extract --json` of every scan with the
                       filters off (--param border_erosion_blocks=0 --param image_edge_margin=0
                       --param cluster_size=1000 --param max_gap_length=0
                       --param min_minutia_coherence=0 --param max_minutiae=1000)
  restore-edge=Q, restore-inner=Q   the same, at the edge of the print or away from it
Modes combine with commas, e.g. `unpaired=0.6,restore-all=own`.
"""
import argparse, math, os, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from leader_agreement import edge_distance, hull, load, pair  # noqa: E402

HEADER = 24  # ISO/IEC 19794-2:2005 record header; one finger view follows
VIEW = 4  # finger view header: position, view/impression, quality, minutia count
MINUTIA = 6


def read_record(path):
    """The record's bytes and its minutiae (type 1 ending / 2 bifurcation, ISO directions)."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"FMR\0" or b[22] < 1:
        raise ValueError(f"{path}: not an ISO/IEC 19794-2:2005 record with a finger view")
    ms = []
    for k in range(b[HEADER + 3]):
        o = HEADER + VIEW + MINUTIA * k
        ms.append(dict(type=b[o] >> 6, x=((b[o] & 0x3F) << 8) | b[o + 1], y=((b[o + 2] & 0x3F) << 8) | b[o + 3],
                       direction=b[o + 4] * 2 * math.pi / 256, quality=b[o + 5]))
    return b, ms


def write_record(path, template, minutiae):
    """`template`'s header and finger view with `minutiae` instead of its own (at most 255)."""
    body = b"".join(
        bytes([(m["type"] << 6) | (x >> 8), x & 255, y >> 8, y & 255,
               round(m["direction"] / (2 * math.pi) * 256) % 256, max(1, min(100, round(m["quality"])))])
        for m in minutiae[:255]
        for x, y in [(max(0, min(16383, round(m["x"]))), max(0, min(16383, round(m["y"]))))])
    view = template[HEADER:HEADER + 3] + bytes([min(len(minutiae), 255)])
    rec = template[:HEADER] + view + body + b"\0\0"  # no extended data
    rec = rec[:8] + struct.pack(">I", len(rec)) + rec[12:]
    with open(path, "wb") as f:
        f.write(rec)


def edit(modes, ours, leader, tol, tol_rad, candidates=()):
    """Our minutiae edited by the comma-separated `modes` (see the module's text); `candidates`
    are our extractor's minutiae before its filters, for the `restore` modes."""
    pairs = pair(ours, leader, tol, tol_rad)
    paired_ours, paired_leader = {i for i, _ in pairs}, {j for _, j in pairs}
    kind = lambda m: 1 if m["kind"] == "ending" else 2
    as_ours = lambda m, q: dict(type=kind(m), x=m["x"], y=m["y"], direction=m["direction"], quality=q)
    h = hull([(m["x"], m["y"]) for m in ours + leader])
    at_edge = lambda m: edge_distance((m["x"], m["y"]), h) < 2 * tol
    where = {"all": lambda m: True, "edge": at_edge, "inner": lambda m: not at_edge(m)}
    missed = [m for j, m in enumerate(leader) if j not in paired_leader]
    kept, added = list(ours), []
    for mode in modes.split(","):
        name, _, value = mode.partition("=")
        verb, _, place = name.partition("-")
        if name == "same":
            continue
        elif name == "unpaired":
            f = float(value)
            kept = [m if i in paired_ours else dict(m, quality=max(1, round(m["quality"] * f))) for i, m in enumerate(kept)]
        elif name == "leader":
            return [as_ours(m, 100 * m["quality"]) for m in leader]
        elif verb == "add" and place in where:
            added += [as_ours(m, float(value)) for m in missed if where[place](m)]
        elif verb == "restore" and place in where:
            # Candidates our filters dropped (not within 2 px of a kept minutia) that pair with a
            # LEADER minutia we miss: what a perfect filter would have kept.
            dropped = [c for c in candidates if not any(math.hypot(c["x"] - m["x"], c["y"] - m["y"]) < 2 for m in ours)]
            wanted = [m for m in missed if where[place](m)]
            added += [as_ours(dropped[i], dropped[i]["quality"] if value == "own" else float(value))
                      for i, _ in pair(dropped, wanted, tol, tol_rad)]
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    return kept + added


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--leader", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", help="folder holding SET/<name>.tif (default: beside OURS's records)")
    ap.add_argument("--candidates", help="folder of SET/<name>.json: `idcardd extract --json` with the filters off (restore modes)")
    ap.add_argument("--tol-px", type=float, default=12.0)
    ap.add_argument("--tol-deg", type=float, default=30.0)
    ap.add_argument("--leader-threshold", type=float, default=0.6)
    ap.add_argument("mode")
    ap.add_argument("sets", nargs="+")
    a = ap.parse_args()
    for s in a.sets:
        os.makedirs(os.path.join(a.out, s), exist_ok=True)
        for n in sorted(os.listdir(os.path.join(a.ours, s))):
            if not n.endswith(".iso"):
                continue
            stem = n[:-4]
            template, ours = read_record(os.path.join(a.ours, s, n))
            lr = load(os.path.join(a.leader, s, stem + ".json"))
            leader = [m for m in lr["minutiae"] if m["quality"] >= a.leader_threshold]
            tol = a.tol_px * lr["dpi"] / 500.0
            candidates = []
            if a.candidates:
                cp = os.path.join(a.candidates, s, stem + ".json")
                candidates = load(cp)["minutiae"] if os.path.getsize(cp) else []
            edited = edit(a.mode, ours, leader, tol, math.radians(a.tol_deg), candidates)
            write_record(os.path.join(a.out, s, n), template, edited)
            for ext in (".tif", ".png", ".bmp"):
                src = os.path.realpath(os.path.join(a.images or a.ours, s, stem + ext))
                dst = os.path.join(a.out, s, stem + ext)
                if os.path.exists(src) and not os.path.lexists(dst):
                    os.symlink(src, dst)


if __name__ == "__main__":
    main()
