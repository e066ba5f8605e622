#!/usr/bin/env bash
# The whole test suite: installs what it needs, then format, lints and every test.
# Tests that need pcscd start it themselves (and stop it); tests that need ../shared/fingerprints
# skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The layers of docs/architecture.md: no forbidden crate dependency, no module import cycle.
python3 scripts/check_layers.py
# The analysis scripts' record editing (issue 19: scripts/leader_oracle.py).
python3 scripts/test_leader_oracle.py
# The systemd unit: systemd-analyze verify when present, the hardening directives always.
bash scripts/check_unit.sh
cargo build --workspace --bins --locked
# `cargo test` builds <target>/debug/idcardd itself before any test runs: the e2e tests use that
# one instead of building their own (a second copy of the daemon with other features).
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
IDCARDD_BIN="$target/debug/idcardd" cargo test --workspace --locked 2>&1 | tee "$target/test.log"
