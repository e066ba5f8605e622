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
  libsqlite3-dev openssl python3 python3-zmq
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
