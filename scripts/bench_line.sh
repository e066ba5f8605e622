#!/usr/bin/env bash
# Issue 17 figures: cards per minute of 1, 2 and 4 stations (2 simulated readers each) working one
# batch on one PostgreSQL journal, next to one station on its own SQLite journal; the CPU each
# process took; claim latency (p50, p99) on both journals; what a SIGKILLed station costs the
# line (seconds until its records move).
#
#   bash scripts/bench_line.sh            # CARDS=200 STATIONS="1 2 4" LEASE=5
#
# Everything runs on this machine: PostgreSQL (started here in a temporary directory, as the
# postgres user when root), the stations and their simulated readers share its cores, so the
# figures say how the line scales on one machine, not on a line of PCs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
BIN=${IDCARDD_BIN:-$PWD/target/release/idcardd}
[ -x "$BIN" ] || cargo build --release --locked -p idcardd >/dev/null
CARDS=${CARDS:-200}
STATIONS=${STATIONS:-"1 2 4"}
LEASE=${LEASE:-5}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
W=$(mktemp -d /tmp/idcardd-bench-line.XXXXXX)
chmod 755 "$W"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir "$W/pg"
[ "$(id -u)" = 0 ] && chown postgres "$W/pg"
as_pg "$PGBIN/initdb" -D "$W/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --locale=C -E UTF8 >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -o "-c listen_addresses=127.0.0.1 -p $PORT -k $W/pg" \
  -l "$W/pg/log" -w start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
psql_su() { psql -X -q -A -t -h "$W/pg" -p "$PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
PW=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
psql_su "CREATE ROLE idcardd LOGIN PASSWORD '$PW'"
printf '%s\n' "$PW" > "$W/journal.password"

# One issuer token and Document Signer for every station (as a line shares its HSM).
"$BIN" keys init --state-dir "$W/keys" >/dev/null
"$BIN" pki init "$W/pki" --state-dir "$W/keys" >/dev/null
MODULE=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so 2>/dev/null | head -1)
KEYS="[keys]
module = \"$MODULE\"
token_label = \"idcardd\"
pin = { file = \"$W/keys/hsm/idcardd.pin\" }
softhsm_conf = \"$W/keys/hsm/softhsm2.conf\""
"$BIN" batch manifest --cards "$CARDS" > "$W/manifest.jsonl"

config() { # station k, database (empty: SQLite)
  local f="$W/st-$1.toml"
  {
    [ -n "$2" ] && printf 'journal = "postgres://idcardd@127.0.0.1:%s/%s"\njournal_password = { file = "%s" }\n' "$PORT" "$2" "$W/journal.password"
    printf 'station_id = "st-%s"\n[line]\nlease_s = %s\n%s\n' "$1" "$LEASE" "$KEYS"
  } > "$f"
  echo "$f"
}

# CPU seconds (user+system) of a finished child, from /proc while it ran: sampled by `time`.
run_station() { # k db batch-id-or-manifest
  local k=$1 db=$2 what=$3 sub=resume
  [ -f "$what" ] && sub=run
  /usr/bin/time -f "%U %S" -o "$W/cpu-$k" "$BIN" batch "$sub" "$what" --readers sim:2 \
    --state-dir "$W/run/st-$k" --config "$(config "$k" "$db")" --pki "$W/pki" >/dev/null 2>"$W/st-$k.log"
}

echo "cards per minute, $CARDS valid records, 2 simulated readers per station ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-28s %10s %12s %s\n' "journal" "wall s" "cards/min" "CPU s per station (user+sys)"
# One station on its own SQLite journal.
rm -rf "$W/run"; mkdir -p "$W/run"
start=$(date +%s.%N)
run_station 0 "" "$W/manifest.jsonl"
end=$(date +%s.%N)
wall=$(python3 -c "print(round($end-$start, 2))")
printf '%-28s %10s %12s %s\n' "sqlite, 1 station" "$wall" "$(python3 -c "print(round($CARDS*60/($end-$start)))")" "$(awk '{print $1+$2}' "$W/cpu-0")"

for n in $STATIONS; do
  db="line$n"
  psql_su "CREATE DATABASE $db OWNER idcardd"
  rm -rf "$W/run"; mkdir -p "$W/run"
  # The batch is journaled first (station 0 submits it and works; the others join it).
  start=$(date +%s.%N)
  run_station 0 "$db" "$W/manifest.jsonl" &
  pids=($!)
  id=""
  while [ -z "$id" ]; do
    id=$(psql_su "SELECT id FROM batches LIMIT 1" "$db" 2>/dev/null || true)
    sleep 0.05
  done
  for k in $(seq 1 $((n - 1))); do run_station "$k" "$db" "$id" & pids+=($!); done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  cpu=$(for k in $(seq 0 $((n - 1))); do awk '{printf "%.1f ", $1+$2}' "$W/cpu-$k"; done)
  printf '%-28s %10s %12s %s\n' "postgres, $n station(s)" "$(python3 -c "print(round($end-$start, 2))")" \
    "$(python3 -c "print(round($CARDS*60/($end-$start)))")" "$cpu"
  psql_su "SELECT station, COUNT(*) FROM records WHERE state = 'personalized' GROUP BY station ORDER BY station" "$db" \
    | tr '\n' ' ' | sed 's/^/    cards per station: /'; echo
done

# Claim latency: claims of small records by 4 threads at once (as 2 stations of 2 readers).
echo "claim latency:"
"$BIN" batch bench-claims --records 2000 --workers 4 --state-dir "$W/claims-sqlite"
psql_su "CREATE DATABASE claims OWNER idcardd"
"$BIN" batch bench-claims --records 2000 --workers 4 --state-dir "$W/claims-pg" --config "$(config 9 claims)"

# What a SIGKILLed station costs: two stations, one killed while writing; seconds until the other
# takes its records over (lease $LEASE s) and the batch's end, against the same batch undisturbed.
db=kill
psql_su "CREATE DATABASE $db OWNER idcardd"
rm -rf "$W/run"; mkdir -p "$W/run"
run_station 0 "$db" "$W/manifest.jsonl" &
p0=$!
id=""
while [ -z "$id" ]; do id=$(psql_su "SELECT id FROM batches LIMIT 1" "$db" 2>/dev/null || true); sleep 0.05; done
( "$BIN" batch resume "$id" --readers sim:2 --state-dir "$W/run/st-1" --config "$(config 1 "$db")" \
    --pki "$W/pki" >/dev/null 2>"$W/st-1.log" ) &
p1=$!
while [ "$(psql_su "SELECT COUNT(*) FROM records WHERE station = 'st-1' AND state = 'writing'" "$db")" = 0 ]; do sleep 0.01; done
pkill -KILL -P "$p1" idcardd || true
killed=$(date +%s.%N)
kill -KILL "$p1" 2>/dev/null || true
# The killed station's claims move when st-0 takes them over (its records' station becomes st-0).
while [ "$(psql_su "SELECT COUNT(*) FROM records WHERE station = 'st-1' AND state IN ('checking', 'writing')" "$db")" != 0 ]; do sleep 0.02; done
moved=$(date +%s.%N)
wait "$p0"
echo "SIGKILLed station: its records moved after $(python3 -c "print(round($moved-$killed, 2))") s (lease $LEASE s); batch complete: $(psql_su "SELECT COUNT(*) FROM records WHERE state = 'personalized'" "$db")/$CARDS personalized"
