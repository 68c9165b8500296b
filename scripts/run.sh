#!/usr/bin/env bash
# The one run command: starts all four services with their sidecars (`dapr run -f .`) on any
# machine, Docker or not.
#
# After a full `dapr init` (Docker), Redis, placement and scheduler already run and this is the
# same as typing `dapr run -f .`. On a machine without them, it first installs what is missing
# (scripts/install-dapr.sh builds Dapr from its Go modules; redis-server comes from Debian
# packages) and starts Redis on localhost:6379, placement on 50005 and scheduler on 50006, the
# addresses `dapr init` uses; it stops what it started when you press Ctrl-C.
#
# Like `dapr init`, it also starts Zipkin, the trace backend, on http://127.0.0.1:9411 (its jar is
# downloaded once from Maven Central; Java 17), and the sidecars (config/tracing.yaml) and the
# services (dapr.yaml) send it their spans. ZIPKIN=off leaves it out.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_tools

started=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local pid
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2 _
  for _ in $(seq 1 100); do
    listening "$port" && return 0
    sleep 0.1
  done
  die "$what did not start listening on port $port (its log: $CACHE_DIR/run-logs/$what.log)"
}

mkdir -p "$CACHE_DIR/run-logs"
zipkin_starting=0
case "${ZIPKIN:-on}" in
  off) say "Zipkin: not started (ZIPKIN=off)" ;;
  on)
    if listening "$ZIPKIN_PORT"; then
      say "Zipkin: using the one already on localhost:$ZIPKIN_PORT"
    else
      zipkin_jar="$(ensure_zipkin)"
      say "Zipkin: starting the Zipkin $ZIPKIN_VERSION server on 127.0.0.1:$ZIPKIN_PORT (traces in memory; log in $CACHE_DIR/run-logs)"
      start_zipkin "$zipkin_jar" "$CACHE_DIR/run-logs/zipkin.log"
      started+=("$ZIPKIN_PID")
      zipkin_starting=1
    fi
    ;;
  *) die "ZIPKIN must be on or off, not '$ZIPKIN'" ;;
esac
if listening 6379; then
  say "Redis: using the one already on localhost:6379"
else
  say "Redis: starting redis-server on localhost:6379 (in memory only; log in $CACHE_DIR/run-logs)"
  redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no >"$CACHE_DIR/run-logs/redis.log" 2>&1 &
  started+=($!)
  wait_for_port 6379 redis
fi
if listening 50005; then
  say "placement: using the one already on port 50005"
else
  say "placement: starting $DAPR_HOME/bin/placement on port 50005"
  "$DAPR_HOME/bin/placement" --port 50005 --healthz-port 58080 --metrics-port 59090 >"$CACHE_DIR/run-logs/placement.log" 2>&1 &
  started+=($!)
  wait_for_port 50005 placement
fi
if listening 50006; then
  say "scheduler: using the one already on port 50006"
else
  say "scheduler: starting $DAPR_HOME/bin/scheduler on port 50006"
  "$DAPR_HOME/bin/scheduler" --port 50006 --healthz-port 58081 --metrics-port 59091 \
    --etcd-data-dir "$CACHE_DIR/scheduler-data" >"$CACHE_DIR/run-logs/scheduler.log" 2>&1 &
  started+=($!)
  wait_for_port 50006 scheduler
fi

# On a first run `dapr run -f .` would start four `cargo run`s that compile one after another, so
# order-processor could come up minutes after checkout starts calling it. Built first, all four
# start within a second. Each is built on its own, as `cargo run -p` builds it, so that
# `cargo run` finds nothing left to compile.
say "building the four services (cargo build; the first time this takes a few minutes)"
for service in checkout order-processor order-service inventory-service; do
  cargo build --locked --quiet -p "$service"
done

if [[ $zipkin_starting == 1 ]]; then
  # It starts while the services build; the sidecars' first spans must find it up.
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$ZIPKIN_PORT/health" >/dev/null && break
    kill -0 "$ZIPKIN_PID" 2>/dev/null || die "Zipkin exited (its log: $CACHE_DIR/run-logs/zipkin.log)"
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$ZIPKIN_PORT/health" >/dev/null || die "Zipkin did not answer within 60 s (its log: $CACHE_DIR/run-logs/zipkin.log)"
  say "Zipkin: open http://127.0.0.1:$ZIPKIN_PORT/zipkin/ to see the traces; one order's is http://127.0.0.1:$ZIPKIN_PORT/zipkin/traces/<its trace_id>"
fi

say "starting checkout, order-processor, order-service and inventory-service: dapr run -f . (Ctrl-C stops them all)"
# `dapr run -f` moves itself into a process group of its own, where a terminal's Ctrl-C does not
# reach it when a script started it; so this script passes SIGINT and SIGTERM on to that group.
dapr run -f . &
dapr_pid=$!
# shellcheck disable=SC2317  # run by the INT and TERM trap
stop_dapr() { kill -INT -- "-$dapr_pid" 2>/dev/null || kill -INT "$dapr_pid" 2>/dev/null || true; }
trap stop_dapr INT TERM
status=0
wait "$dapr_pid" || status=$?
# A trapped signal ends the first wait early; wait again for the CLI to stop the apps.
if kill -0 "$dapr_pid" 2>/dev/null; then wait "$dapr_pid" || status=$?; fi
exit "$status"
