#!/usr/bin/env bash
# Checks deploy/idcardd.service: `systemd-analyze verify` where systemd-analyze exists (any
# warning about the unit fails), then the directives the service must keep, always.
# Usage: bash scripts/check_unit.sh [UNIT]
set -euo pipefail
cd "$(dirname "$0")/.."
unit=${1:-deploy/idcardd.service}
[ -f "$unit" ] || { echo "check_unit: $unit not found" >&2; exit 1; }
fail=0

if command -v systemd-analyze >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp "$unit" "$tmp/idcardd.service"
  # verify also checks that ExecStart's binary exists: point it at a built one when the
  # installed /usr/local/bin/idcardd is missing (this checks the unit, not the install).
  if [ ! -x /usr/local/bin/idcardd ]; then
    bin=$(ls -t target/release/idcardd target/debug/idcardd 2>/dev/null | head -n1 || true)
    sed -i "s#/usr/local/bin/idcardd#$(realpath "${bin:-/bin/true}")#" "$tmp/idcardd.service"
  fi
  # Unknown keys are warnings with exit status 0: any line about the unit is a failure.
  if ! out=$(systemd-analyze verify "$tmp/idcardd.service" 2>&1); then
    echo "$out" >&2; echo "check_unit: systemd-analyze verify failed" >&2; fail=1
  elif grep -q 'idcardd\.service' <<<"$out"; then
    grep 'idcardd\.service' <<<"$out" >&2; echo "check_unit: systemd-analyze verify warned" >&2; fail=1
  else
    echo "check_unit: systemd-analyze verify: clean"
  fi
else
  echo "check_unit: systemd-analyze not found: checking the required directives only"
fi

# key=value lines, comments and leading blanks dropped.
directives=$(sed -e 's/^[[:space:]]*//' -e '/^[#;]/d' "$unit")
require() {
  if ! grep -qxE "$1" <<<"$directives"; then
    echo "check_unit: $unit lacks $2" >&2; fail=1
  fi
}
require 'User=idcardd' 'User=idcardd'
require 'Group=idcardd' 'Group=idcardd'
require 'Type=(simple|exec)' 'Type=simple or Type=exec (the daemon does not call sd_notify)'
require 'ExecStart=/usr/local/bin/idcardd serve --config /etc/idcardd/idcardd\.toml' 'ExecStart=... serve --config /etc/idcardd/idcardd.toml'
require 'RuntimeDirectory=idcardd' 'RuntimeDirectory=idcardd'
require 'StateDirectory=idcardd' 'StateDirectory=idcardd'
require 'Restart=on-failure' 'Restart=on-failure'
require 'NoNewPrivileges=(yes|true)' 'NoNewPrivileges=yes'
require 'ProtectSystem=strict' 'ProtectSystem=strict'
require 'ProtectHome=(yes|true)' 'ProtectHome=yes'
require 'PrivateTmp=(yes|true)' 'PrivateTmp=yes'
require 'CapabilityBoundingSet=' 'an empty CapabilityBoundingSet='
require 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'

# TimeoutStopSec must outlast the default [server] shutdown_grace_ms (10 s).
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' <<<"$directives")
if [ -z "$stop" ] || [ "$stop" -le 10 ]; then
  echo "check_unit: TimeoutStopSec must be set in seconds and exceed shutdown_grace_ms (10 s)" >&2
  fail=1
fi

[ "$fail" -eq 0 ] && echo "check_unit: $unit ok"
exit "$fail"
