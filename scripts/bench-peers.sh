#!/usr/bin/env bash
# Runs the shared side-by-side fan-out harness (../shared/bench) with Switchboard added as one more
# target, then regenerates docs/performance.md from that run.
#
#   scripts/bench-peers.sh                           # every peer + Switchboard, every scenario (~15 min)
#   scripts/bench-peers.sh switchboard go-gorilla    # some targets (names as in run-peers.sh)
#   QUICK=1 scripts/bench-peers.sh switchboard       # smoke run
#   LOADGEN_ARGS="-reader epoll" scripts/bench-peers.sh switchboard go-gorilla
#   EPOLL_SWEEP=0 scripts/bench-peers.sh             # without the second, epoll-reader sweep
#
# After a full run (no targets named), a second run repeats the sweep alone with the generator's
# epoll reader (LOADGEN_ARGS="-reader epoll", ~10 min) for Switchboard and EPOLL_TARGETS (default:
# the two fastest peers and raw-limit-batch), because the default reader reaches its own ceiling
# first. Switchboard runs there with --presence false: that reader takes over each socket after
# the join ack and drops whatever the server sent in between (the presence.join of later joiners),
# which peers never send.
#
# Every knob of run-peers.sh (SCENARIOS, FANOUT_N, …) passes through. Servers listen on 127.0.0.1
# only; the server is pinned to CPU 0 and the load generator to CPU 1 by run-peers.sh.
set -euo pipefail
# The servers measured run without rate limits: one publisher sends far more than the default
# 20 message.send per second. An environment variable rather than --rate-limits false, so that a
# binary from before rate limits (an A/B baseline) still starts.
export SWITCHBOARD_RATE_LIMITS=false
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
export BENCH_WORK=${BENCH_WORK:-/tmp/switchboard-peer-bench}
[ -x "$SHARED_BENCH/run-peers.sh" ] || { echo "bench-peers: $SHARED_BENCH/run-peers.sh not found" >&2; exit 1; }

if [ -n "${SWITCHBOARD_BIN:-}" ]; then
    BIN=$SWITCHBOARD_BIN  # a release binary built earlier
else
    echo "[bench-peers] building switchboard (release)" >&2
    (cd "$ROOT" && swift build -c release --product switchboard >&2)
    BIN=$ROOT/.build/release/switchboard
fi

export JWT_SECRET=${JWT_SECRET:-switchboard-bench-secret-0123456789abcdef}
DB_DIR=$(mktemp -d)
trap 'rm -rf "$DB_DIR"' EXIT
# The generator gives each client its own `sub`; the per-user limit stays at its default.
export EXTRA_TARGETS="switchboard|19010|envelope|$BIN serve --host 127.0.0.1 --port 19010 --jwt-secret $JWT_SECRET --database $DB_DIR/bench.sqlite --log-level warning"

# run-peers.sh only copies itself out of a folder it cannot write, and root can write anywhere:
# run it from a copy, so that nothing is built or written inside shared/.
mkdir -p "$BENCH_WORK"
cp -rT "$SHARED_BENCH" "$BENCH_WORK"
chmod -R u+w "$BENCH_WORK"
"$BENCH_WORK/run-peers.sh" "$@"
RUN=$(ls -1d "$BENCH_WORK"/results/2*/ | sort | tail -n 1)

EPOLL_RUN=
if [ $# -eq 0 ] && [ "${EPOLL_SWEEP:-1}" = 1 ]; then
    read -r -a epoll_targets <<<"${EPOLL_TARGETS:-go-gorilla node-ws raw-limit-batch}"
    EXTRA_TARGETS="${EXTRA_TARGETS} --presence false" SCENARIOS=sweep SKIP_BUILD=1 LOADGEN_ARGS="-reader epoll" \
        "$BENCH_WORK/run-peers.sh" switchboard "${epoll_targets[@]}"
    EPOLL_RUN=$(ls -1d "$BENCH_WORK"/results/2*/ | sort | tail -n 1)
fi

export SWITCHBOARD_COMMIT=${SWITCHBOARD_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD)}
python3 "$ROOT/scripts/performance-report.py" "$RUN" "$BENCH_WORK/summarize.py" "$*" $EPOLL_RUN > "$ROOT/docs/performance.md"
echo "[bench-peers] wrote docs/performance.md from $RUN ${EPOLL_RUN:+and $EPOLL_RUN}" >&2
