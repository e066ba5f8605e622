#!/usr/bin/env python3
"""Leave-one-set-out choice of one extraction constant (issue 19). Plain Python 3.

    python3 scripts/loso.py BASE_DIR CANDIDATE_DIR...

Each DIR holds `<set>.json` from `idcardd bench fvc DIR --json` for every shared set, one DIR
per value of the constant (BASE_DIR: today's value). For each held-out set the value with the
lowest mean extended-impostor EER on the other four sets is chosen and its EER and FMR1000 on
the held-out set are printed beside today's. A change is worth keeping only when the held-out
figures improve on average.
"""
import json, os, sys

SETS = ["fvc2002_db1_b", "fvc2002_db3_b", "fvc2004_db1_b", "fvc2004_db3_b", "fvc2004_db4_b"]


def load(d):
    r = {}
    for s in SETS:
        j = json.load(open(os.path.join(d, s + ".json")))
        r[s] = (100 * j["extended"]["eer"], 100 * j["extended"]["fmr1000"])
    return r


def main():
    dirs = sys.argv[1:]
    runs = {d: load(d) for d in dirs}
    base = runs[dirs[0]]
    name = lambda d: os.path.basename(os.path.normpath(d))
    print("| held-out set | chosen on the other four | EER % today → held-out | FMR1000 % today → held-out |")
    print("|---|---|---|---|")
    sb = sn = fb = fn = 0.0
    for held in SETS:
        train = [s for s in SETS if s != held]
        best = min(dirs, key=lambda d: (sum(runs[d][s][0] for s in train), dirs.index(d)))
        e0, f0 = base[held]; e1, f1 = runs[best][held]
        sb += e0; sn += e1; fb += f0; fn += f1
        print(f"| {held} | {name(best)} | {e0:.2f} → {e1:.2f} | {f0:.2f} → {f1:.2f} |")
    print(f"| mean of held-out folds | | {sb/5:.2f} → {sn/5:.2f} | {fb/5:.2f} → {fn/5:.2f} |")
    print()
    print("| run | " + " | ".join(SETS) + " | macro EER | macro FMR1000 |")
    print("|---|" + "---|" * (len(SETS) + 2))
    for d in dirs:
        r = runs[d]
        print(f"| {name(d)} | " + " | ".join(f"{r[s][0]:.2f} / {r[s][1]:.2f}" for s in SETS)
              + f" | {sum(r[s][0] for s in SETS)/5:.2f} | {sum(r[s][1] for s in SETS)/5:.2f} |")


if __name__ == "__main__":
    main()
