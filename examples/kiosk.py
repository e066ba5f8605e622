#!/usr/bin/env python3
"""A kiosk-side command line on top of idcardd_client.

    kiosk.py --endpoint ipc:///run/idcardd/idcardd.sock health
    kiosk.py --endpoint E version | readers | card-info READER
    kiosk.py --endpoint E extract SCAN.png [--dpi 500] [--out T.iso]
    kiosk.py --endpoint E compare PROBE.iso CANDIDATE.iso [--fmr 0.001]
    kiosk.py --events E2 events [TOPIC...]
    kiosk.py --endpoint E delivery-begin READER [--face-out FACE.jpg]
    kiosk.py --endpoint E delivery-verify SESSION --scan 2:live.png [--scan 7:live2.png]
    kiosk.py --endpoint E delivery-activate SESSION        (new PIN: $IDCARDD_NEW_PIN or prompt)
    kiosk.py --endpoint E card-terminate READER --reason lost
    kiosk.py --endpoint E card-unblock READER              (PUK, new PIN: env or prompt)

Each command is one function `cmd_<name>(client, args)` registered in COMMANDS with its
argument parser setup; add a command by adding both.
"""

import argparse
import getpass
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idcardd_client import IdcarddClient, IdcarddError  # noqa: E402


def show(value):
    print(json.dumps(value, indent=2, sort_keys=True))


def cmd_health(client, args):
    show(client.call("system.health"))


def cmd_version(client, args):
    show(client.call("system.version"))


def cmd_readers(client, args):
    show(client.call("readers.list"))


def cmd_card_info(client, args):
    show(client.call("card.info", {"reader": args.reader}))


def cmd_extract(client, args):
    with open(args.scan, "rb") as f:
        scan = f.read()
    result, frames = client.call_frames(
        "matcher.extract", {"dpi": args.dpi, "format": args.format, "binary": True}, [scan]
    )
    if args.out:
        with open(args.out, "wb") as f:
            f.write(frames[0])
    show(result)


def cmd_compare(client, args):
    templates = []
    for path in [args.probe] + args.candidates:
        with open(path, "rb") as f:
            templates.append(f.read())
    show(client.call("matcher.compare", {"format": args.format, "fmr": args.fmr}, templates))


def cmd_events(client, args):
    for topic, body in client.subscribe(args.events, args.topics or [""]):
        print(topic, json.dumps(body, sort_keys=True), flush=True)


def secret(env, prompt):
    """A PIN or PUK from the environment or a hidden prompt, never from the command line."""
    value = os.environ.get(env)
    return value if value else getpass.getpass(prompt)


def cmd_delivery_begin(client, args):
    result, frames = client.call_frames("delivery.begin", {"reader": args.reader})
    if args.face_out and frames:
        with open(args.face_out, "wb") as f:
            f.write(frames[0])
    show(result)


def cmd_delivery_verify(client, args):
    scans, frames = [], []
    for i, spec in enumerate(args.scan):
        finger, path = spec.split(":", 1)
        with open(path, "rb") as f:
            frames.append(f.read())
        scans.append({"finger": int(finger), "frame": i, "dpi": args.dpi})
    show(client.call("delivery.verify", {"session": args.session, "scans": scans}, frames))


def cmd_delivery_activate(client, args):
    params = {"session": args.session, "new_pin": secret("IDCARDD_NEW_PIN", "New PIN: ")}
    if os.environ.get("IDCARDD_TRANSPORT_PIN"):
        params["transport_pin"] = os.environ["IDCARDD_TRANSPORT_PIN"]
    show(client.call("delivery.activate", params))


def cmd_card_terminate(client, args):
    show(client.call("card.terminate", {"reader": args.reader, "reason": args.reason}))


def cmd_card_unblock(client, args):
    params = {
        "reader": args.reader,
        "puk": secret("IDCARDD_PUK", "PUK: "),
        "new_pin": secret("IDCARDD_NEW_PIN", "New PIN: "),
    }
    show(client.call("card.unblock", params))


def setup_delivery_begin(p):
    p.add_argument("reader")
    p.add_argument("--face-out", help="write the chip's face image here")


def setup_delivery_verify(p):
    p.add_argument("session")
    p.add_argument("--scan", action="append", required=True, help="FINGER:FILE, repeatable")
    p.add_argument("--dpi", type=int, default=500)


def setup_session(p):
    p.add_argument("session")


def setup_card_terminate(p):
    p.add_argument("reader")
    p.add_argument("--reason", required=True, choices=["lost", "stolen", "replaced", "damaged"])


def setup_card_info(p):
    p.add_argument("reader")


def setup_extract(p):
    p.add_argument("scan")
    p.add_argument("--dpi", type=int, default=500)
    p.add_argument("--format", default="record", choices=["record", "normal", "compact"])
    p.add_argument("--out", help="write the template here")


def setup_compare(p):
    p.add_argument("probe")
    p.add_argument("candidates", nargs="+")
    p.add_argument("--format", default="record", choices=["record", "normal", "compact"])
    p.add_argument("--fmr", type=float, default=0.001)


def setup_events(p):
    p.add_argument("topics", nargs="*", help="topic prefixes (default: all)")


# name: (function, parser setup or None, help)
COMMANDS = {
    "health": (cmd_health, None, "system.health"),
    "version": (cmd_version, None, "system.version"),
    "readers": (cmd_readers, None, "readers.list"),
    "card-info": (cmd_card_info, setup_card_info, "card.info READER"),
    "extract": (cmd_extract, setup_extract, "matcher.extract SCAN"),
    "compare": (cmd_compare, setup_compare, "matcher.compare PROBE CANDIDATE..."),
    "events": (cmd_events, setup_events, "print events from the PUB socket"),
    "delivery-begin": (cmd_delivery_begin, setup_delivery_begin, "delivery.begin READER"),
    "delivery-verify": (cmd_delivery_verify, setup_delivery_verify, "delivery.verify SESSION"),
    "delivery-activate": (cmd_delivery_activate, setup_session, "delivery.activate SESSION"),
    "card-terminate": (cmd_card_terminate, setup_card_terminate, "card.terminate READER"),
    "card-unblock": (cmd_card_unblock, setup_card_info, "card.unblock READER"),
}


def default_endpoint(name):
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        base = os.path.join(runtime, "idcardd")
    elif os.geteuid() == 0:
        base = "/run/idcardd"
    else:
        base = f"/tmp/idcardd-{os.geteuid()}"
    return f"ipc://{base}/{name}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=default_endpoint("idcardd.sock"))
    parser.add_argument("--events", default=default_endpoint("events.sock"))
    parser.add_argument("--timeout-ms", type=int, default=60000)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, setup, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if setup:
            setup(p)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    with IdcarddClient(args.endpoint, timeout_ms=args.timeout_ms) as client:
        try:
            args.func(client, args)
        except IdcarddError as e:
            print(f"error: {e}", file=sys.stderr)
            if e.data:
                print(json.dumps(e.data, indent=2), file=sys.stderr)
            return 2
        except TimeoutError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
