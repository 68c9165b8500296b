#!/usr/bin/env bash
# The benchmark command. Builds release binaries, then measures on this machine:
#   - order-processor alone (no sidecar) against a bare axum endpoint, log line on and off;
#   - service invocation through two real daprd sidecars, and the same load without them;
#   - pub/sub end to end with real daprd and Redis: throughput with an exact-stock check, and
#     publish-to-applied latency at a fixed 200 orders/s;
#   - start-up time, idle and peak RSS of each service, and CPU shares of services vs runtime;
#   - the cost of span export: order-processor alone and pub/sub again, with the services and
#     sidecars sending their spans to a real Zipkin server (as scripts/run.sh runs them).
# Results: bench/results/results.json, results.md and chart.svg (see bench/README.md).
#
#   scripts/bench.sh            full run, ~8 minutes after the build; run it on an idle machine
#   scripts/bench.sh --smoke    every stage for 1-2 s, under 2 minutes after the build; the numbers
#                               are meaningless and go to target/bench/smoke-results/
#   scripts/bench.sh --stages alone,startup [--smoke]   only some stages
#                               (startup,alone,invocation,pubsub,export; all by default)
#   scripts/bench.sh --out DIR  write the results somewhere else
#   scripts/bench.sh --no-pin   alone stage: server and wrk share all cores (default: pinned apart)
#   scripts/bench.sh --profile  also profile (callgrind instructions per request, perf samples)
#                               on a second, symbolized build in target/bench-profile
#
# The run uses app ids bench-* and ports 16379 and 17000-17999 only, starts daprd directly
# (no placement or scheduler), and stops everything it started on exit, error or Ctrl-C. It fails
# only when something does not work, never because of a number.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

case "${1:-}" in
  -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

say "making sure the Dapr runtime, redis-server, wrk and python3 are installed"
ensure_tools
command -v wrk >/dev/null || apt_install wrk
command -v wrk >/dev/null || die "wrk is still not on PATH"
command -v python3 >/dev/null || die "python3 is needed to run bench/bench.py"
export DAPRD="$DAPR_HOME/bin/daprd"

# The export stage (in every run unless --stages leaves it out) needs the Zipkin server jar.
stages=startup,alone,invocation,pubsub,export
previous=
for arg in "$@"; do
  [[ "$previous" == --stages ]] && stages="$arg"
  [[ "$arg" == --stages=* ]] && stages="${arg#--stages=}"
  previous="$arg"
done
if [[ ",$stages," == *,export,* ]]; then
  say "making sure the Zipkin server jar is here (the export stage sends spans to it)"
  ZIPKIN_JAR="$(ensure_zipkin)"
  export ZIPKIN_JAR
fi

say "building release binaries (the four services, bench-axum, bench-probe)"
cargo build --release --locked --quiet \
  -p order-processor -p checkout -p order-service -p inventory-service -p bench --bins

extra=()
for arg in "$@"; do
  if [[ "$arg" == --profile ]]; then
    command -v valgrind >/dev/null || apt_install valgrind
    command -v perf >/dev/null || apt_install linux-perf || warn "perf is unavailable; profiling with callgrind only"
    say "building symbolized release binaries for profiling (target/bench-profile)"
    # Same optimizations as the release profile; only the symbols are kept.
    CARGO_TARGET_DIR="$REPO_ROOT/target/bench-profile" CARGO_PROFILE_RELEASE_STRIP=none \
      CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
      cargo build --release --locked --quiet -p order-processor -p bench --bins
    extra+=(--profile-bin-dir "$REPO_ROOT/target/bench-profile/release")
  fi
done

exec python3 bench/bench.py --bin-dir "$REPO_ROOT/target/release" "${extra[@]}" "$@"
