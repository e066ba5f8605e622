#!/usr/bin/env bash
# The main job: builds idcardd and runs its demo on simulated readers (no hardware needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo build --release --locked -p idcardd
exec target/release/idcardd demo "$@"
