#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (Linux, Swift 6.1+) with -sanitize=fuzzer,address and
# runs each for a bounded time, printing libFuzzer's final statistics. A finding stops that target
# and leaves its input in .build-fuzz/artifacts/<target>/; turn it into a regression test (see
# docs/fuzzing.md) and fix it.
#
#   scripts/fuzz.sh [seconds per target, default 60] [target…]
set -euo pipefail
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzFrames FuzzHandshake FuzzEnvelope)
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/.build-fuzz"
cd "$root/Fuzz"
# ld.gold stops with an internal error on these objects; lld (shipped with Swift) links them.
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --build-path "$build" 2>&1 | grep -v "Cannot export local symbol" | tail -3
status=0
for target in "${targets[@]}"; do
    corpus="$build/corpus/$target"
    artifacts="$build/artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"
    echo "== $target: ${seconds}s"
    # The first directory collects the inputs that reach new code; the seeds are read only.
    if "$build/release/$target" "$corpus" "$root/Fuzz/Seeds/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts" -print_final_stats=1 > "$build/$target.log" 2>&1; then
        grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$build/$target.log" | sed 's/^/   /'
        echo "   no finding"
    else
        status=1
        grep -E "ERROR|Fatal|precondition|SUMMARY|Test unit written" "$build/$target.log" | head -8 | sed 's/^/   /'
        echo "   FINDING: see $build/$target.log and $artifacts"
    fi
done
exit $status
