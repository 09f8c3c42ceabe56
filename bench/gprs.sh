#!/bin/bash
# Incremental sync of the standard workload over an emulated GPRS link (issue 5; goal < 10 s).
# Needs root, iproute2, nftables, python3 and the Rust toolchain. Not run in CI.
#
#   bench/gprs.sh                  # 1,000 tickets (DAIBAN_BENCH_TICKETS to change)
#   DAIBAN_BENCH_BIN=path bench/gprs.sh   # use an already built benchmark executable
#
# 1. Builds the sync benchmark (`cargo bench -p sync-server --bench sync --no-run`).
# 2. ../shared/bench/gprs-link.sh setup: namespaces daiban-tab (10.77.0.1) and daiban-srv
#    (10.77.0.2) joined by a veth pair. Refuses to run if they already exist.
# 3. In daiban-srv: the benchmark in server mode (a fresh township server on 10.77.0.2:7000
#    under a district on :7002 that gave it the directory) and proxy.py on 10.77.0.2:7001 in
#    front of the township, driven through a FIFO.
# 4. In daiban-tab: the benchmark as the workload's 20 tablets, syncing through the proxy
#    (staff events go straight to the servers: township events to the township, window
#    events to the district). Phases (a) and (b) and the rest of the initial
#    histories run on the plain link. Around every sync sweep of phase (c) the benchmark calls
#    back into this script: before, the link is shaped (gprs-link.sh shape: 40 kbit/s, 1 % loss
#    each way) and the proxy delays data 500 ms each way (the kernel has no netem; see
#    gprs-link.sh); after, both are undone.
# 5. Steps 3-4 run twice (GPRS_MODES, default "1 0"), each with a fresh server: first the 20
#    tablets sync at the same time in phase (c), one thread each, all sharing the one link
#    (the pessimistic case for bandwidth); then one after the other, each alone on the link,
#    as a village on its own GPRS link (the slowest tablet's time is the field figure).
# 6. Prints the benchmark's figures (look for "incremental sync over this link" and the
#    waves' times) and proxy.py's counts of each shaped sweep, then tears everything down.
#
# Caveat (see ../shared/bench/README.md): proxy.py delays data, not TCP handshakes, and every
# tablet sync opens a new connection, so on a real link add about one round trip (~1 s) per
# tablet sync. 1 % loss makes single runs vary by several seconds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${DAIBAN_BENCH_SHARED:-$(cd "$ROOT/../shared/bench" && pwd)}
LINK="$SHARED/gprs-link.sh"
TAB=daiban-tab SRV=daiban-srv
SRV_IP=10.77.0.2 SERVER_PORT=7000 PROXY_PORT=7001 DISTRICT_PORT=7002

# Send one command to proxy.py and wait for its answer line (so the delay is in force before
# the sweep starts). GPRS_CTL / GPRS_OUT are set by the main run below.
proxy_ctl() {
  local before
  before=$(wc -l < "$GPRS_OUT")
  echo "$1" > "$GPRS_CTL"
  for _ in $(seq 1 200); do
    [ "$(wc -l < "$GPRS_OUT")" -gt "$before" ] && return 0
    sleep 0.05
  done
  echo "gprs.sh: proxy.py did not answer '$1'" >&2
  return 1
}

case "${1:-}" in
_before)
  # Called by the benchmark (inside daiban-tab) just before a measured sync sweep.
  "$LINK" shape > /dev/null
  proxy_ctl "set 500 0"
  proxy_ctl reset
  exit 0
  ;;
_after)
  # ... and just after it.
  proxy_ctl stats
  tail -n 1 "$GPRS_OUT" >> "$GPRS_STATS"
  proxy_ctl "set 0 0"
  "$LINK" unshape
  exit 0
  ;;
"") ;;
*)
  echo "usage: $0   (as root; DAIBAN_BENCH_TICKETS=N to change the ticket count)" >&2
  exit 2
  ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "gprs.sh: needs root (network namespaces, tc, nft)" >&2
  exit 1
fi
for tool in ip tc nft python3 cargo; do
  command -v "$tool" > /dev/null || { echo "gprs.sh: $tool not found" >&2; exit 1; }
done
if ip netns list | grep -qE "^($TAB|$SRV)\b"; then
  echo "gprs.sh: namespaces $TAB / $SRV already exist; remove them with '$LINK teardown'" >&2
  exit 1
fi

BIN=${DAIBAN_BENCH_BIN:-}
if [ -z "$BIN" ]; then
  echo "== building the sync benchmark"
  BIN=$(cd "$ROOT" && cargo bench -p sync-server --bench sync --no-run --message-format=json 2> /dev/null \
    | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "sync" and m.get("executable"):
        print(m["executable"])')
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "gprs.sh: could not build the benchmark; run 'cargo bench -p sync-server --bench sync --no-run' to see why" >&2
  exit 1
fi
echo "   $BIN"

WORK=$(mktemp -d /tmp/daiban-gprs.XXXXXX)
export GPRS_CTL="$WORK/proxy.ctl" GPRS_OUT="$WORK/proxy.out" GPRS_STATS="$WORK/stats.jsonl"
SERVER_PID= PROXY_PID=
stop_server() {
  set +e
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2> /dev/null && wait "$PROXY_PID" 2> /dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2> /dev/null && wait "$SERVER_PID" 2> /dev/null
  exec 3>&- 2> /dev/null
  PROXY_PID= SERVER_PID=
  set -e
}
cleanup() {
  set +e
  stop_server
  "$LINK" teardown
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== link: $LINK setup"
"$LINK" setup

# One measurement: a fresh server and proxy, the benchmark as the tablets.
# $1: 1 = in phase (c) the tablets sync at the same time over the one link; 0 = one after
# the other (each alone on the link, as a village on its own link).
run_once() {
  local concurrent=$1 data="$WORK/server-$1"
  rm -f "$GPRS_CTL"
  : > "$GPRS_OUT"
  : > "$GPRS_STATS"
  echo "== township server in $SRV on $SRV_IP:$SERVER_PORT (its district on :$DISTRICT_PORT)"
  ip netns exec "$SRV" env DAIBAN_BENCH_MODE=serve DAIBAN_BENCH_LISTEN="$SRV_IP:$SERVER_PORT" \
    DAIBAN_BENCH_DISTRICT_LISTEN="$SRV_IP:$DISTRICT_PORT" \
    DAIBAN_BENCH_DATA="$data" "$BIN" > "$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    grep -q "listening on" "$WORK/server.out" && break
    kill -0 "$SERVER_PID" 2> /dev/null || { cat "$WORK/server.out" >&2; return 1; }
    sleep 0.05
  done
  grep -q "listening on" "$WORK/server.out" || { echo "gprs.sh: server did not start" >&2; return 1; }

  echo "== proxy.py in $SRV on $SRV_IP:$PROXY_PORT (delay off until the measured sweeps)"
  mkfifo "$GPRS_CTL"
  ip netns exec "$SRV" python3 "$SHARED/proxy.py" --listen "$SRV_IP:$PROXY_PORT" \
    --target "$SRV_IP:$SERVER_PORT" < "$GPRS_CTL" > "$GPRS_OUT" 2>&1 &
  PROXY_PID=$!
  # Keep a writer open for the proxy's whole life: its stdin must not see end-of-file.
  exec 3> "$GPRS_CTL"
  for _ in $(seq 1 200); do
    grep -q listening "$GPRS_OUT" && break
    sleep 0.05
  done
  grep -q listening "$GPRS_OUT" || { echo "gprs.sh: proxy.py did not start" >&2; cat "$GPRS_OUT" >&2; return 1; }

  echo "== tablets in $TAB"
  ip netns exec "$TAB" env \
    DAIBAN_BENCH_TICKETS="${DAIBAN_BENCH_TICKETS:-1000}" \
    DAIBAN_BENCH_SERVER_URL="http://$SRV_IP:$PROXY_PORT" \
    DAIBAN_BENCH_STAFF_URL="http://$SRV_IP:$SERVER_PORT" \
    DAIBAN_BENCH_DISTRICT_URL="http://$SRV_IP:$DISTRICT_PORT" \
    DAIBAN_BENCH_TOWNSHIP_DB="$data/township.db" \
    DAIBAN_BENCH_CONCURRENT="$concurrent" \
    DAIBAN_BENCH_SHARED="$SHARED" \
    DAIBAN_BENCH_BEFORE_TIMED="'$HERE/gprs.sh' _before" \
    DAIBAN_BENCH_AFTER_TIMED="'$HERE/gprs.sh' _after" \
    "$BIN"

  echo
  echo "== proxy.py's counts of each shaped sweep of phase (c) (wire bytes, HTTP included)"
  python3 - "$GPRS_STATS" << 'EOF2'
import json, sys
total = [0, 0, 0, 0]
for i, line in enumerate(open(sys.argv[1]), 1):
    s = json.loads(line)
    span = (s["last_byte"] - s["first_byte"]) if s.get("first_byte") else 0.0
    print(f"  wave {i}: up {s['bytes_up']} B, down {s['bytes_down']} B, {s['exchanges']} round trips, "
          f"{s['connections']} connections; proxy read first to last byte {span:.2f} s")
    total = [a + b for a, b in zip(total, [s["bytes_up"], s["bytes_down"], s["exchanges"], s["connections"]])]
print(f"  all:    up {total[0]} B, down {total[1]} B, {total[2]} round trips, {total[3]} connections")
EOF2
  stop_server
}

for mode in ${GPRS_MODES:-1 0}; do
  echo
  if [ "$mode" = 1 ]; then
    echo "######## phase (c): all tablets sync at the same time, sharing the one link"
  else
    echo "######## phase (c): the tablets sync one after the other, each alone on the link"
  fi
  run_once "$mode"
done
