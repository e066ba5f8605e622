#!/usr/bin/env python3
"""Drives a delivery through a running `idcardd serve` with pyzmq, the way a kiosk does:
examples/idcardd_client.py for the calls, examples/kiosk.py for activation (PIN from the
environment). Run by daemon/tests/delivery_serve.rs; prints "all checks passed".

    delivery_client.py --endpoint E --events E2 --fixtures DIR --reader sim:0
        [--finger 2 --genuine 1_2.png --impostor 3_2.png --document A00000001 --fingers 2,7]

tests/batch_e2e.rs runs it against a card personalized by `idcardd batch run` behind pcscd+vpcd.
"""

import argparse
import contextlib
import io
import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "examples"))
from idcardd_client import IdcarddClient, IdcarddError  # noqa: E402
import kiosk  # noqa: E402


def expect_error(name, fn, *args):
    try:
        fn(*args)
    except IdcarddError as e:
        assert e.name == name, f"expected {name}, got {e.name}: {e.message}"
        return e
    raise AssertionError(f"expected {name}, got success")


def scan(fixtures, name):
    with open(os.path.join(fixtures, name), "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--reader", default="sim:0")
    ap.add_argument("--finger", type=int, default=2, help="ISO position of the live finger")
    ap.add_argument("--genuine", default="1_2.png", help="holder's live scan (in --fixtures)")
    ap.add_argument("--impostor", default="3_2.png", help="another person's scan")
    ap.add_argument("--document", default="A00000001", help="expected document number")
    ap.add_argument("--fingers", default="2,7", help="expected fingers on the card")
    args = ap.parse_args()
    fingers = [int(f) for f in args.fingers.split(",")]

    # Listen for card.delivered before activating.
    delivered = []
    listener = IdcarddClient(args.endpoint)

    def listen():
        for topic, body in listener.subscribe(args.events, ["card.delivered"]):
            delivered.append(body)
            return

    threading.Thread(target=listen, daemon=True).start()

    with IdcarddClient(args.endpoint, timeout_ms=60000) as c:
        assert "delivery.begin" in c.call("system.version")["methods"]
        result, frames = c.call_frames("delivery.begin", {"reader": args.reader})
        session = result["session"]
        holder = result["holder"]
        assert holder["document_number"] == args.document, holder
        assert holder["fingers"] == fingers, holder
        assert frames and frames[0][:2] == b"\xff\xd8", "face frame is a JPEG"
        assert result["attempts_left"] == 3

        # Activation before any verification is refused.
        expect_error("not_verified", c.call, "delivery.activate",
                     {"session": session, "new_pin": "482913"})
        # An impostor, then the holder.
        e = expect_error("no_match", c.call, "delivery.verify",
                         {"session": session, "finger": args.finger},
                         [scan(args.fixtures, args.impostor)])
        assert e.data["attempts_left"] == 2, e.data
        ok = c.call("delivery.verify", {"session": session, "finger": args.finger},
                    [scan(args.fixtures, args.genuine)])
        assert ok["decision"] == "match", ok
        assert ok["timing_ms"]["extraction"] > 0
        # Unknown sessions are refused with a stable name.
        expect_error("session_unknown", c.call, "delivery.verify",
                     {"session": "00" * 16, "finger": args.finger},
                     [scan(args.fixtures, args.genuine)])

    # Activation through the kiosk command line, the PIN from the environment.
    os.environ["IDCARDD_NEW_PIN"] = "482913"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = kiosk.main(["--endpoint", args.endpoint, "delivery-activate", session])
    assert rc == 0, out.getvalue()
    activated = json.loads(out.getvalue())
    assert activated["delivered"] is True and activated["life_cycle"] == "activated", activated
    assert "482913" not in out.getvalue()

    with IdcarddClient(args.endpoint) as c:
        # The session is spent: replaying it is refused.
        expect_error("session_unknown", c.call, "delivery.activate",
                     {"session": session, "new_pin": "111111"})
        expect_error("already_delivered", c.call, "delivery.begin", {"reader": args.reader})

    for _ in range(100):
        if delivered:
            break
        threading.Event().wait(0.05)
    assert delivered and delivered[0]["serial"] == activated["serial"], delivered
    listener.close()
    print("all checks passed")


if __name__ == "__main__":
    main()
