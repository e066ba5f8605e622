#!/usr/bin/env python3
"""Leave-one-set-out over shifted copies of the shared sets (issue 19). Plain Python 3.

    python3 scripts/loso_shift.py --before DIR... --after DIR...

Each DIR holds `<set>.json` from `idcardd bench fvc ... --json` for every shared set, one DIR per
condition (the sets as scanned, or under one `--shift` / `--probe-shift`); --before and --after
list the same conditions in the same order, for the two builds (or settings) compared. For each
held-out set the build with the lower mean extended-impostor EER over every condition of the
other four sets is chosen, and its mean EER and FMR1000 over the held-out set's conditions are
printed beside the other build's, with how many conditions the after build wins and loses there.
A change is worth keeping when the held-out folds improve on average: the shifts stand in for
sensors neither build was tuned on.
"""
import argparse, json, os

SETS = ["fvc2002_db1_b", "fvc2002_db3_b", "fvc2004_db1_b", "fvc2004_db3_b", "fvc2004_db4_b"]


def rates(d, s):
    x = json.load(open(os.path.join(d, s + ".json")))["extended"]
    return 100 * x["eer"], 100 * x["fmr1000"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", nargs="+", required=True)
    ap.add_argument("--after", nargs="+", required=True)
    a = ap.parse_args()
    if len(a.before) != len(a.after):
        raise SystemExit("--before and --after must list the same number of conditions")
    runs = {b: {s: [rates(d, s) for d in dirs] for s in SETS}
            for b, dirs in (("before", a.before), ("after", a.after))}
    mean = lambda v, i: sum(x[i] for x in v) / len(v)
    n = len(a.before)
    print("| held-out set | chosen on the other four | EER % before → held-out | "
          "FMR1000 % before → held-out | conditions after wins / loses (EER) |")
    print("|---|---|---|---|---|")
    tot = [0.0] * 4
    for held in SETS:
        train = [s for s in SETS if s != held]
        best = min(("before", "after"),
                   key=lambda b: (sum(mean(runs[b][s], 0) for s in train), b != "before"))
        e0, f0 = mean(runs["before"][held], 0), mean(runs["before"][held], 1)
        e1, f1 = mean(runs[best][held], 0), mean(runs[best][held], 1)
        pairs = list(zip(runs["after"][held], runs["before"][held]))
        wins = sum(x[0] < y[0] for x, y in pairs)
        losses = sum(x[0] > y[0] for x, y in pairs)
        for i, v in enumerate((e0, e1, f0, f1)):
            tot[i] += v / len(SETS)
        print(f"| {held} | {best} | {e0:.2f} → {e1:.2f} | {f0:.2f} → {f1:.2f} | {wins} / {losses} of {n} |")
    print(f"| mean of held-out folds | | {tot[0]:.2f} → {tot[1]:.2f} | {tot[2]:.2f} → {tot[3]:.2f} | |")


if __name__ == "__main__":
    main()
