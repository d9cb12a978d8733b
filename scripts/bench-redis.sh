#!/usr/bin/env bash
# Redis scaling, measured side by side in one run (release build of `switchboard`):
#   publish  publishes/s through RedisBroker's Lua script against redis-benchmark running the same
#            EVALSHA with the same pipelining (`switchboard redis-bench`)
#   fanout   1000 subscribers × 41 msg/s for 8 s, three ways: one node without Redis (`single`), one
#            node on Redis (`redis`), publisher on node A and every subscriber on node B (`cross`):
#            delivery latency p50/p99 and the fan-out node's CPU µs per delivery
#   sweep    the highest sustained fan-out rate, `single` against `redis` (4 s steps)
#
#   scripts/bench-redis.sh [BINARY] [ROUNDS]     # default .build/release/switchboard, 2 rounds
#
# Everything listens on 127.0.0.1: one throw-away redis-server (no persistence), the nodes and
# redis-server pinned to CPU 0, the generator to CPU 1. Each round alternates the order of the
# setups; the medians and the ratios against `single` are printed at the end.
set -euo pipefail
# The servers measured run without rate limits: one publisher sends far more than the default
# 20 message.send per second. An environment variable rather than --rate-limits false, so that a
# binary from before rate limits (an A/B baseline) still starts.
export SWITCHBOARD_RATE_LIMITS=false
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"
BIN=${1:-$ROOT/.build/release/switchboard}
ROUNDS=${2:-2}
WORK=${BENCH_WORK:-/tmp/switchboard-redis-bench}
OUT=$WORK/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
command -v redis-server >/dev/null || { echo "bench-redis: redis-server is needed (apt-get install redis-server)" >&2; exit 1; }


REDIS_PORT=$(free_port)
REDIS_DIR=$(mktemp -d)
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
wait_port "$REDIS_PORT"
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$REDIS_DIR/redis.pid" ] && kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    rm -rf "$REDIS_DIR"
}
trap cleanup EXIT

node() { # port [--redis URL]; sets NODE_PID (not run in a subshell, so that `wait` can reap it)
    local port=$1; shift
    local db; db=$(mktemp -d)
    taskset -c 0 "$BIN" serve --host 127.0.0.1 --port "$port" --jwt-secret "$SECRET" --database "$db/db.sqlite" --log-level warning "$@" \
        >"$OUT/node-$port.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
}

bench() { # name pid args...
    local name=$1 pid=$2; shift 2
    timeout 300 taskset -c 1 "$BIN" bench "$@" --jwt-secret "$SECRET" --server-pid "$pid" --json >"$OUT/$name.json" 2>"$OUT/$name.log" || true
}

run_setup() { # setup scenario round
    local setup=$1 scenario=$2 round=$3 a b pa pb
    a=$(free_port); b=$(free_port)
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    case $setup in
        single) node "$a"; pa=$NODE_PID; wait_port "$a"; pb=$pa; b=$a ;;
        redis) node "$a" --redis "$REDIS_URL"; pa=$NODE_PID; wait_port "$a"; pb=$pa; b=$a ;;
        cross) node "$a" --redis "$REDIS_URL"; pa=$NODE_PID; node "$b" --redis "$REDIS_URL"; pb=$NODE_PID; wait_port "$a"; wait_port "$b" ;;
    esac
    local args=(--url "ws://127.0.0.1:$b/ws" --publisher-url "ws://127.0.0.1:$a/ws")
    case $scenario in
        fanout) bench "$setup-fanout-$round" "$pb" fanout "${args[@]}" --subscribers 1000 --rate 41 --duration 8s ;;
        sweep) bench "$setup-sweep-$round" "$pb" sweep "${args[@]}" --subscribers 1000 --step 4s ;;
    esac
    # The next setup starts only once these nodes are gone: one still closing its connections
    # would take CPU 0 from it.
    kill "$pa" "$pb" 2>/dev/null || true
    wait "$pa" "$pb" 2>/dev/null || true
}

echo "[bench-redis] publishes through the script (redis-bench)" >&2
taskset -c 1 "$BIN" redis-bench --redis "$REDIS_URL" --publishes 200000 --json >"$OUT/publish.json" 2>"$OUT/publish.log" || true
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="single redis cross"; else order="cross redis single"; fi
    for setup in $order; do
        echo "[bench-redis] round $round: $setup fanout" >&2
        run_setup "$setup" fanout "$round"
    done
    for setup in $order; do
        [ "$setup" = cross ] && continue
        echo "[bench-redis] round $round: $setup sweep" >&2
        run_setup "$setup" sweep "$round"
    done
done

python3 - "$OUT" <<'PY'
import json, glob, os, statistics, sys
out = sys.argv[1]
def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*-*-*.json"))):
    setup, scenario, _ = os.path.basename(path)[:-5].split("-")
    data = load(path)
    if not data:
        continue
    if scenario == "fanout":
        step = data.get("step", {})
        cpu = step.get("cpu", {}).get("server_cpu_pct")
        delivered = step.get("delivered") or 0
        figures = {"p50 ms": step.get("latency", {}).get("p50_ms"), "p99 ms": step.get("latency", {}).get("p99_ms"),
                   "delivered %": 100 * step.get("delivered_fraction", 0)}
        if cpu is not None and delivered:
            figures["µs/delivery"] = cpu / 100 * data.get("duration_s", 8) * 1e6 / delivered
    else:
        figures = {"max deliveries/s": data.get("max_sustained_deliveries_per_s")}
    for key, value in figures.items():
        if value is not None:
            rows.setdefault((scenario, key), {}).setdefault(setup, []).append(value)
print(f"# Redis scaling run {os.path.basename(out)}\n")
publish = load(os.path.join(out, "publish.json"))
if publish:
    line = f"publishes through the script: {publish['publishes_per_second']:.0f}/s"
    if publish.get("redis_benchmark_per_second"):
        line += f"; redis-benchmark EVALSHA {publish['redis_benchmark_per_second']:.0f}/s; ratio {publish['ratio']:.2f}"
    print(line + "\n")
print("| scenario | figure | single (rounds) | redis (rounds) | cross (rounds) | redis/single | cross/single |")
print("|---|---|---|---|---|---|---|")
for (scenario, key), by in sorted(rows.items()):
    med = {s: statistics.median(v) for s, v in by.items() if v}
    fmt = lambda s: ", ".join(f"{x:.4g}" for x in by.get(s, [])) or "–"
    ratio = lambda s: f"{med[s] / med['single']:.3f}" if s in med and med.get("single") else "–"
    print(f"| {scenario} | {key} | {fmt('single')} | {fmt('redis')} | {fmt('cross')} | {ratio('redis')} | {ratio('cross')} |")
PY
