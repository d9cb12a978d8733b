#!/usr/bin/env bash
# Side by side: two release builds of `switchboard serve` measured in one run, alternating in each
# round, with the shared Go load generator (../shared/bench/loadgen). For changes on the delivery
# path: compare a commit with the one before it on this noisy machine.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]      # default 3 rounds (~2 min each)
#
# Per round and binary, each on a freshly started server pinned to CPU 0, the generator on CPU 1:
#   fanout  1000 subscribers, 41 msg/s for 8 s: server CPU µs per delivery, p99
#   sweep   1000 subscribers, rising rate (5 s steps, 60 s limit): max sustained deliveries/s
#   rtt     50 clients, 5 s closed loop of message.send → ack: acks/s
#   idle    10000 connections joined to 100 rooms: KiB per idle connection
# Prints every figure and the medians, NEW/OLD. Servers listen on 127.0.0.1 only; every run is
# bounded by the generator's own time limits.
set -euo pipefail
# The servers measured run without rate limits: one publisher sends far more than the default
# 20 message.send per second. An environment variable rather than --rate-limits false, so that a
# binary from before rate limits (an A/B baseline) still starts.
export SWITCHBOARD_RATE_LIMITS=false
OLD=${1:?old binary}
NEW=${2:?new binary}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
WORK=${BENCH_WORK:-/tmp/switchboard-ab}
SECRET=switchboard-bench-secret-0123456789abcdef
PORT=${PORT:-19031}
SCENARIOS=${SCENARIOS:-fanout sweep rtt idle}

mkdir -p "$WORK"
if [ ! -x "$WORK/loadgen" ]; then
    command -v go >/dev/null || { echo "bench-ab: go is needed (apt-get install golang-go golang-github-gorilla-websocket-dev)" >&2; exit 1; }
    (cd "$SHARED_BENCH/loadgen" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o "$WORK/loadgen" .)
fi
ulimit -n 65536 2>/dev/null || true
OUT=$WORK/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

run() { # label binary scenario round
    local label=$1 binary=$2 scenario=$3 round=$4 db
    db=$(mktemp -d)
    taskset -c 0 "$binary" serve --host 127.0.0.1 --port "$PORT" --jwt-secret "$SECRET" --database "$db/db.sqlite" --log-level warning \
        >"$OUT/$label-$scenario-$round.server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do ss -Hltn "sport = :$PORT" | grep -q . && break; sleep 0.05; done
    local args=(-url "ws://127.0.0.1:$PORT/ws" -jwt-secret "$SECRET" -pid "$pid" -label "$label")
    case $scenario in
        fanout) args+=(-scenario fanout -n 1000 -rate 41 -duration 8s) ;;
        sweep) args+=(-scenario sweep -n 1000 -sweep-time-limit 60s) ;;
        rtt) args+=(-scenario rtt -n 50 -duration 5s) ;;
        idle) args+=(-scenario idle -n 10000) ;;
    esac
    timeout 300 taskset -c 1 "$WORK/loadgen" "${args[@]}" >"$OUT/$label-$scenario-$round.json" 2>"$OUT/$label-$scenario-$round.log" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$db"
}

for round in $(seq "$ROUNDS"); do
    # Alternate which binary goes first, so that a drift of the machine does not favour one.
    if [ $((round % 2)) = 1 ]; then order="old new"; else order="new old"; fi
    for scenario in $SCENARIOS; do
        for label in $order; do
            if [ "$label" = old ]; then binary=$OLD; else binary=$NEW; fi
            echo "[bench-ab] round $round: $label $scenario" >&2
            run "$label" "$binary" "$scenario" "$round"
        done
    done
done

python3 - "$OUT" <<'PY'
import json, glob, os, statistics, sys
out = sys.argv[1]
def figures(path):
    try:
        data = json.load(open(path))
    except Exception:
        return {}
    scenario = data.get("scenario")
    if scenario == "fanout":
        step = data.get("result", {})
        delivered = step.get("delivered", 0)
        cpu = step.get("server_cpu_pct")
        seconds = data.get("duration_s") or 8
        result = {"p99 ms": step.get("latency", {}).get("p99_ms"), "delivered %": 100 * step.get("delivered_frac", 0)}
        if cpu and delivered:
            result["µs/delivery"] = cpu / 100 * seconds * 1e6 / delivered
        return result
    if scenario == "sweep":
        return {"max deliveries/s": data.get("max_sustained_deliveries_per_s") or data.get("best", {}).get("deliveries_per_s")}
    if scenario == "rtt":
        return {"acks/s": data.get("acks_per_s")}
    if scenario == "idle":
        return {"KiB/conn": data.get("kib_per_conn")}
    return {}
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    label, scenario, round_ = os.path.basename(path)[:-5].split("-")
    for key, value in figures(path).items():
        if value is not None:
            rows.setdefault((scenario, key), {}).setdefault(label, []).append(value)
print(f"# A/B run {os.path.basename(out)}\n")
print("| scenario | figure | old (each round) | new (each round) | old median | new median | new/old |")
print("|---|---|---|---|---|---|---|")
for (scenario, key), by in sorted(rows.items()):
    old, new = by.get("old", []), by.get("new", [])
    mo = statistics.median(old) if old else None
    mn = statistics.median(new) if new else None
    ratio = f"{mn / mo:.3f}" if mo and mn else "–"
    fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)
    print(f"| {scenario} | {key} | {fmt(old)} | {fmt(new)} | {mo if mo is None else f'{mo:.4g}'} | {mn if mn is None else f'{mn:.4g}'} | {ratio} |")
PY
