#!/usr/bin/env bash
# Churn soak (issue 11): builds release, starts `switchboard serve`, runs `switchboard bench soak`
# against it and prints its figures: users connecting, joining, publishing, dropping (TCP close,
# half a frame, a send without waiting for its ack, Close 1000, half handshakes) and resuming for
# DURATION; then every acked event must have reached every user of its room, the rooms must be
# empty and the server's file descriptors back to their idle count; its fds, sockets, threads and
# RSS before, at peak and after come from /proc/PID.
#
#   scripts/bench-soak.sh                          # in-memory broker
#   REDIS=1 scripts/bench-soak.sh                  # one node on a throw-away redis-server
#   USERS=2000 ROOMS=100 DURATION=4m RATE=0.5 LIFETIME=8s scripts/bench-soak.sh
#   BIN=.build/debug/switchboard scripts/bench-soak.sh   # an existing binary, no build
#
# Everything listens on 127.0.0.1; the server is pinned to CPU 0, the generator to CPU 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"
USERS=${USERS:-2000}
ROOMS=${ROOMS:-100}
DURATION=${DURATION:-4m}
RATE=${RATE:-0.5}
LIFETIME=${LIFETIME:-8s}
OUT=${BENCH_WORK:-/tmp/switchboard-soak}/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
# Each user holds a socket in the generator and one in the server, and a few more while it churns.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n) (users $USERS)"

if [ -z "${BIN:-}" ]; then
    (cd "$ROOT" && swift build -c release --product switchboard 2>&1 | tail -1)
    BIN=$ROOT/.build/release/switchboard
fi


REDIS_ARGS=()
REDIS_PID=""
if [ "${REDIS:-0}" = 1 ]; then
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port "$rport"
    REDIS_ARGS=(--redis "redis://127.0.0.1:$rport/0")
fi
port=$(free_port)
db=$(mktemp -d)
# History and replay large enough for a user's absence (the soak expects every resume to recover).
taskset -c 0 "$BIN" serve --host 127.0.0.1 --port "$port" --jwt-secret "$SECRET" --database "$db/db.sqlite" \
    --rate-limits false --presence-grace 2s --log-level warning "${REDIS_ARGS[@]}" >"$OUT/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$db"; }
trap cleanup EXIT
wait_port "$port"
echo "server pid $SERVER on port $port${REDIS_PID:+ (redis)}; machine load: $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
taskset -c 1 "$BIN" bench soak --url "ws://127.0.0.1:$port/ws" --jwt-secret "$SECRET" --server-pid "$SERVER" \
    --connections "$USERS" --rooms "$ROOMS" --duration "$DURATION" --rate "$RATE" --lifetime "$LIFETIME" \
    2>"$OUT/progress.log" | tee "$OUT/result.txt" || status=$?
echo "slow consumers closed (4008) in the server's log: $(grep -c 4008 "$OUT/server.log" || true)"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg); logs in $OUT"
exit $status
