#!/usr/bin/env bash
# Takes the README's picture of one order's trace: a screenshot of Zipkin's own UI, by headless
# Chromium (Debian's `chromium` package, installed when missing), into docs/img/trace.png.
#
# Run it while scripts/run.sh runs, after placing an order (the quick start's `order-2001`):
#   scripts/screenshot-trace.sh              the newest trace with inventory-service's
#                                            `process OrderPlaced` span
#   scripts/screenshot-trace.sh TRACE_ID     that trace (the trace_id of an order's log line)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

zipkin="http://127.0.0.1:$ZIPKIN_PORT"
out=docs/img/trace.png
case "${1:-}" in
  -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

curl -sf "$zipkin/health" >/dev/null || die "no Zipkin on $zipkin: start scripts/run.sh first"
trace_id="${1:-}"
if [[ -z "$trace_id" ]]; then
  trace_id="$(curl -sf "$zipkin/api/v2/traces?serviceName=inventory-service&spanName=process%20orderplaced&limit=1" \
    | python3 -c 'import json, sys; traces = json.load(sys.stdin); print(traces[0][0]["traceId"] if traces else "")')"
  [[ -n "$trace_id" ]] || die "Zipkin has no trace of an applied order yet: place one (the quick start's curl) and wait a few seconds"
fi
[[ "$trace_id" =~ ^[0-9a-f]{32}$ ]] || die "'$trace_id' is not a 32-hex-digit trace id"
curl -sf "$zipkin/api/v2/trace/$trace_id" >/dev/null || die "Zipkin has no trace $trace_id"

command -v chromium >/dev/null || apt_install chromium
mkdir -p "$(dirname "$out")"
say "screenshot of $zipkin/zipkin/traces/$trace_id into $out"
# --virtual-time-budget lets the UI fetch and draw the trace before the picture is taken;
# --no-sandbox because this may run as root (CI, containers).
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,820 \
  --virtual-time-budget=15000 --screenshot="$out" "$zipkin/zipkin/traces/$trace_id" 2>/dev/null
[[ -s "$out" ]] || die "chromium wrote no $out"
say "wrote $out"
