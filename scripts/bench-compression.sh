#!/usr/bin/env bash
# permessage-deflate's cost (release build of `switchboard`): one fan-out, plain and compressed,
# side by side in one run, rounds alternating which goes first.
#   plain     `serve`, and `bench fanout` subscribers that do not offer compression
#   deflate   `serve --compression true`, and subscribers that offer it (as browsers do)
# For each payload size: the server's CPU per delivery (µs), its bytes written per delivery (from
# /proc/PID/io: what goes to the sockets), p99 latency, and the deflate/plain ratios.
#
#   scripts/bench-compression.sh [BINARY] [ROUNDS]     # default .build/release/switchboard, 2
#   SUBSCRIBERS=1000 RATE=40 DURATION=8s SIZES="300 1000 4000" scripts/bench-compression.sh
#
# Everything listens on 127.0.0.1; the server is pinned to CPU 0, the generator to CPU 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"
BIN=${1:-$ROOT/.build/release/switchboard}
ROUNDS=${2:-2}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
RATE=${RATE:-40}
DURATION=${DURATION:-8s}
SIZES=${SIZES:-300 1000 4000}
OUT=${BENCH_WORK:-/tmp/switchboard-compression-bench}/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"


run() { # mode size round
    local mode=$1 size=$2 round=$3 port db pid extra=() bench=()
    port=$(free_port); db=$(mktemp -d)
    if [ "$mode" = deflate ]; then extra=(--compression true); bench=(--compression); fi
    taskset -c 0 "$BIN" serve --host 127.0.0.1 --port "$port" --jwt-secret "$SECRET" --database "$db/db.sqlite" \
        --rate-limits false --presence false --log-level warning "${extra[@]}" >"$OUT/$mode-$size-$round.server.log" 2>&1 &
    pid=$!
    wait_port "$port"
    local before
    before=$(awk '/^wchar/ {print $2}' /proc/"$pid"/io)
    timeout 300 taskset -c 1 "$BIN" bench fanout --url "ws://127.0.0.1:$port/ws" --jwt-secret "$SECRET" --subscribers "$SUBSCRIBERS" \
        --rate "$RATE" --duration "$DURATION" --payload-bytes "$size" --server-pid "$pid" --json --quiet "${bench[@]}" \
        >"$OUT/$mode-$size-$round.json" 2>"$OUT/$mode-$size-$round.log" || true
    echo "$(( $(awk '/^wchar/ {print $2}' /proc/"$pid"/io) - before ))" >"$OUT/$mode-$size-$round.wchar"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$db"
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="plain deflate"; else order="deflate plain"; fi
    for size in $SIZES; do
        for mode in $order; do
            echo "[bench-compression] round $round: $mode, $size-byte content" >&2
            run "$mode" "$size" "$round"
        done
    done
done

python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def find(obj, key):
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for value in obj.values():
            found = find(value, key)
            if found is not None:
                return found
    return None
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    mode, size, round_ = os.path.basename(path)[:-5].split("-")
    try:
        data = json.load(open(path))
    except Exception:
        continue
    step = find(data, "step") or {}
    delivered, expected = step.get("delivered", 0), step.get("expected", 0)
    seconds = step.get("seconds") or step.get("duration_s") or find(data, "seconds")
    cpu = find(step, "server_cpu_pct")
    wchar = int(open(path[:-5] + ".wchar").read().strip() or 0)
    figures = rows.setdefault((int(size), mode), {"µs/delivery": [], "bytes/delivery": [], "p99 ms": [], "delivered %": []})
    if cpu is not None and delivered and seconds:
        figures["µs/delivery"].append(cpu / 100 * seconds * 1e6 / delivered)
    if delivered:
        figures["bytes/delivery"].append(wchar / delivered)
        figures["delivered %"].append(100 * delivered / max(expected, 1))
    p99 = find(step, "p99_ms")
    if p99 is not None:
        figures["p99 ms"].append(p99)
print(f"# permessage-deflate cost, run {os.path.basename(out)}\n")
print("| content bytes | figure | plain (each round) | deflate (each round) | deflate/plain (medians) |")
print("|---|---|---|---|---|")
med = lambda xs: statistics.median(xs) if xs else None
for size in sorted({size for size, _ in rows}):
    plain, deflate = rows.get((size, "plain"), {}), rows.get((size, "deflate"), {})
    for key in ["µs/delivery", "bytes/delivery", "p99 ms", "delivered %"]:
        p, d = plain.get(key, []), deflate.get(key, [])
        ratio = f"{med(d) / med(p):.2f}" if med(p) and med(d) else "–"
        fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)
        print(f"| {size} | {key} | {fmt(p)} | {fmt(d)} | {ratio} |")
PY
