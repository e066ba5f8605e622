#!/usr/bin/env python3
"""Tests of scripts/leader_oracle.py (plain Python 3): `python3 scripts/test_leader_oracle.py`."""
import math, os, struct, sys, tempfile, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from leader_oracle import edit, read_record, write_record  # noqa: E402


def header(width=388, height=374, ppcm=197):
    """A 2005 record header and finger view header with no minutiae (as idcardd writes them)."""
    h = b"FMR\0" + b" 20\0" + struct.pack(">I", 0) + b"\0\0" + struct.pack(">HHHH", width, height, ppcm, ppcm)
    return h + bytes([1, 0]) + bytes([0, 0, 60, 0])


def minutia(kind, x, y, direction, quality):
    return dict(type=kind, x=x, y=y, direction=direction, quality=quality)


class RecordTest(unittest.TestCase):
    def round_trip(self, ms):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.iso")
            write_record(path, header(), ms)
            with open(path, "rb") as f:
                raw = f.read()
            _, back = read_record(path)
        return raw, back

    def test_minutiae_survive_a_round_trip_at_the_records_resolution(self):
        ms = [minutia(1, 10, 20, math.pi / 2, 80), minutia(2, 387, 373, 6.2, 1), minutia(1, 0, 0, 0.0, 100)]
        raw, back = self.round_trip(ms)
        self.assertEqual(struct.unpack(">I", raw[8:12])[0], len(raw))
        self.assertEqual(len(raw), 24 + 4 + 6 * len(ms) + 2)
        self.assertEqual(raw[27], len(ms))
        for a, b in zip(ms, back):
            self.assertEqual((a["type"], a["x"], a["y"], a["quality"]), (b["type"], b["x"], b["y"], b["quality"]))
            d = abs(a["direction"] - b["direction"]) % (2 * math.pi)
            self.assertLessEqual(min(d, 2 * math.pi - d), math.pi / 256 + 1e-9)

    def test_quality_is_kept_within_the_standards_range(self):
        _, back = self.round_trip([minutia(1, 5, 5, 1.0, 0), minutia(1, 6, 6, 1.0, 250)])
        self.assertEqual([m["quality"] for m in back], [1, 100])  # 0 would read "not reported"


class EditTest(unittest.TestCase):
    ours = [dict(type=1, x=100, y=100, direction=1.0, quality=80),
            dict(type=2, x=200, y=200, direction=2.0, quality=50)]
    # LEADER finds the first of ours (3 px away, 0.1 rad), misses the second, adds two:
    # one at the edge of the print and one inside it.
    leader = [dict(x=103, y=100, direction=1.1, kind="ending", quality=0.9),
              dict(x=150, y=150, direction=0.5, kind="bifurcation", quality=0.7),
              dict(x=400, y=100, direction=3.0, kind="ending", quality=0.8),
              dict(x=100, y=400, direction=3.0, kind="ending", quality=0.8),
              dict(x=400, y=400, direction=3.0, kind="ending", quality=0.8)]

    def run_mode(self, mode):
        return edit(mode, [dict(m) for m in self.ours], self.leader, 12.0, math.radians(30))

    def test_unpaired_scales_only_the_minutiae_leader_does_not_find(self):
        out = self.run_mode("unpaired=0.5")
        self.assertEqual([m["quality"] for m in out], [80, 25])

    def test_added_minutiae_are_leaders_missed_ones_split_by_the_edge(self):
        added = lambda mode: [(m["x"], m["y"]) for m in self.run_mode(mode)[len(self.ours):]]
        self.assertEqual(sorted(added("add-all=60")), [(100, 400), (150, 150), (400, 100), (400, 400)])
        self.assertEqual(added("add-inner=60"), [(150, 150)])
        self.assertEqual(sorted(added("add-edge=60")), [(100, 400), (400, 100), (400, 400)])
        self.assertTrue(all(m["quality"] == 60 for m in self.run_mode("add-all=60")[2:]))

    def test_leader_mode_keeps_only_leaders_minutiae_with_its_confidence(self):
        out = self.run_mode("leader")
        self.assertEqual(len(out), len(self.leader))
        self.assertEqual([m["type"] for m in out[:2]], [1, 2])
        self.assertAlmostEqual(out[1]["quality"], 70.0)

    def test_restore_adds_back_only_dropped_candidates_that_leader_confirms(self):
        candidates = [dict(x=100, y=100, direction=1.0, kind="ending", quality=80),  # kept already
                      dict(x=152, y=149, direction=0.6, kind="bifurcation", quality=33),  # LEADER's (150, 150)
                      dict(x=300, y=300, direction=0.6, kind="ending", quality=40)]  # LEADER has none
        out = edit("unpaired=0.5,restore-all=own", [dict(m) for m in self.ours], self.leader, 12.0,
                   math.radians(30), candidates)
        self.assertEqual([(m["x"], m["y"], m["quality"]) for m in out],
                         [(100, 100, 80), (200, 200, 25), (152, 149, 33)])
        self.assertEqual(out[2]["type"], 2)
        out = edit("restore-edge=60", [dict(m) for m in self.ours], self.leader, 12.0, math.radians(30), candidates)
        self.assertEqual(len(out), 2)  # (150, 150) is inside the print

    def test_unknown_mode_is_refused(self):
        with self.assertRaises(SystemExit):
            self.run_mode("nonsense")


if __name__ == "__main__":
    unittest.main()
