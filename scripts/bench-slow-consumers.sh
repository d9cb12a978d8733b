#!/usr/bin/env bash
# Slow consumers under a flood (release build of `switchboard`), two runs on a fresh server each:
#   baseline  READERS subscribers read a fan-out of RATE msg/s for DURATION
#   slow      the same, plus SLOW members of the room that never read (receive buffer 4 KiB)
# For each: the readers' delivered fraction and p99 (`switchboard bench fanout`), the server's
# peak and final RSS, and how many connections it closed as slow consumers (4008, from its log).
#
#   scripts/bench-slow-consumers.sh [BINARY]     # default .build/release/switchboard
#   READERS=300 SLOW=200 RATE=1000 DURATION=20s scripts/bench-slow-consumers.sh
#
# Everything listens on 127.0.0.1; the server is pinned to CPU 0, the clients to CPU 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"
BIN=${1:-$ROOT/.build/release/switchboard}
READERS=${READERS:-300}
SLOW=${SLOW:-200}
RATE=${RATE:-1000}
DURATION=${DURATION:-20s}
OUT=${BENCH_WORK:-/tmp/switchboard-slow-bench}/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"


run() { # name slow-count
    local name=$1 slow=$2 port db pid sampler holder=""
    port=$(free_port); db=$(mktemp -d)
    taskset -c 0 "$BIN" serve --host 127.0.0.1 --port "$port" --jwt-secret "$SECRET" --database "$db/db.sqlite" \
        --rate-limits false --log-level warning >"$OUT/$name.server.log" 2>&1 &
    pid=$!
    wait_port "$port"
    # Peak RSS, sampled every 100 ms while the run lasts.
    (peak=0; while kill -0 "$pid" 2>/dev/null; do
        rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)
        [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" >"$OUT/$name.peak"
        sleep 0.1; done) &
    sampler=$!
    awk '/VmRSS/ {print $2}' /proc/"$pid"/status >"$OUT/$name.rss-before"
    if [ "$slow" -gt 0 ]; then
        taskset -c 1 python3 - "$port" "$slow" "$SECRET" "$OUT/$name.slow-ready" <<'PY' &
import base64, hashlib, hmac, json, os, socket, sys, time
port, count, secret, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
def token(sub):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    return f"{head}.{body}." + b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
def frame(text):
    data, mask = text.encode(), os.urandom(4)
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
sockets = []
for i in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall((f"GET /ws?token={token(f'slow-{i}')} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    s.sendall(frame('{"event":"room.join","data":{"room":"bench-fanout"},"id":"j"}'))
    sockets.append(s)  # never read again
open(ready, "w").write(str(len(sockets)))
time.sleep(3600)
PY
        holder=$!
        for _ in $(seq 600); do [ -f "$OUT/$name.slow-ready" ] && break; sleep 0.1; done
    fi
    timeout 300 taskset -c 1 "$BIN" bench fanout --url "ws://127.0.0.1:$port/ws" --subscribers "$READERS" --rate "$RATE" \
        --duration "$DURATION" --jwt-secret "$SECRET" --server-pid "$pid" --json >"$OUT/$name.json" 2>"$OUT/$name.log" || true
    [ -n "$holder" ] && kill "$holder" 2>/dev/null || true
    # Memory once the slow ones are gone and the server has settled.
    sleep 2
    awk '/VmRSS/ {print $2}' /proc/"$pid"/status >"$OUT/$name.rss-after"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    kill "$sampler" 2>/dev/null || true
    grep -c "slow consumer closed" "$OUT/$name.server.log" >"$OUT/$name.closed" || true
}

run baseline 0
run slow "$SLOW"

python3 - "$OUT" "$READERS" "$SLOW" "$RATE" "$DURATION" <<'PY'
import json, os, sys
out, readers, slow, rate, duration = sys.argv[1:6]
def read(name, suffix, default="?"):
    try: return open(os.path.join(out, f"{name}.{suffix}")).read().strip()
    except OSError: return default
print(f"# Slow consumers run {os.path.basename(out)}: {readers} readers, {rate} msg/s for {duration}; the slow run adds {slow} members that never read\n")
print("| run | readers' delivered | p99 ms | server RSS before / peak / after (MiB) | closed as slow consumers |")
print("|---|---|---|---|---|")
for name in ("baseline", "slow"):
    try: step = json.load(open(os.path.join(out, f"{name}.json")))["step"]
    except Exception: step = {}
    mib = lambda kb: f"{int(kb) / 1024:.0f}" if kb.isdigit() else "?"
    print(f"| {name} | {100 * step.get('delivered_fraction', 0):.2f} % | {step.get('latency', {}).get('p99_ms', '?')} | "
          f"{mib(read(name, 'rss-before'))} / {mib(read(name, 'peak'))} / {mib(read(name, 'rss-after'))} | {read(name, 'closed')} |")
PY
