#!/usr/bin/env bash
# The one test command. On a fresh machine it first installs what the tests need (the Dapr CLI
# and runtime 1.18.3, and runtime 1.16.2, the line Azure Container Apps runs, built from Dapr's
# Go modules when absent; redis-server from Debian packages; the Zipkin server jar from Maven
# Central, the trace backend; Jaeger, a real OTLP/HTTP receiver, built once from its Go module),
# then:
#   1. cargo fmt --check and cargo clippy -D warnings, then the other languages' linters
#      (scripts/lint.sh: shellcheck on scripts/*.sh, ruff on the Python in bench/ and infra/tests/)
#   2. the offline checks of the Azure deployment (scripts/check-infra.sh); they also prepare the
#      Python the parity run reads infra/ with
#   3. the fast tiers (`cargo test --workspace`): handler tests and wiremock tests of the exact
#      sidecar requests
#   4. the end-to-end tests on the real daprd 1.18.3, Dapr CLI and Redis, including the Azure
#      parity run (e2e/tests/e2e/aca.rs) and the OTLP export run into Jaeger
#      (e2e/tests/e2e/otlp.rs); they fail, never skip, when Dapr or Jaeger is missing
#   5. the parity run and the pub/sub and invocation end-to-end tests again on daprd 1.16.2
#   6. the benchmark in smoke mode (scripts/bench.sh --smoke): it must still run; no number is
#      checked, and its results go to target/bench/, not bench/results/
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
started=$SECONDS

say "making sure the Dapr CLI, the Dapr runtime and redis-server are installed"
ensure_tools
say "making sure Dapr runtime 1.16.2 (the Azure Container Apps line) is laid out"
aca_dapr_root="$("$REPO_ROOT/scripts/install-dapr.sh" --aca-runtime | tail -n 1)"
[[ -x "$aca_dapr_root/.dapr/bin/daprd" ]] || die "daprd 1.16.2 is missing from $aca_dapr_root/.dapr/bin"
say "making sure the Zipkin server is downloaded (the trace backend scripts/run.sh starts and the end-to-end tests read)"
zipkin_started=$SECONDS
ensure_zipkin >/dev/null
say "Zipkin server jar ready after $((SECONDS - zipkin_started)) s"
say "making sure Jaeger $JAEGER_VERSION is built (the real OTLP receiver the OTLP end-to-end test and the Azure parity run export to)"
jaeger_started=$SECONDS
JAEGER_BIN="$(ensure_jaeger | tail -n 1)"
[[ -x "$JAEGER_BIN" ]] || die "Jaeger is missing at $JAEGER_BIN"
export JAEGER_BIN
say "Jaeger ready after $((SECONDS - jaeger_started)) s"

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "shellcheck on scripts/*.sh, ruff check and ruff format --check on bench/ and infra/tests/"
scripts/lint.sh

say "offline checks of the Azure deployment"
scripts/check-infra.sh

say "cargo test: handler and wiremock tests"
cargo test --workspace --locked

say "end-to-end tests (real daprd $(daprd --version 2>/dev/null), real Dapr CLI, real Redis, the Azure parity run)"
cargo test -p e2e --features real-dapr --test e2e --locked

say "the Azure parity run, pub/sub and invocation tests on daprd $("$aca_dapr_root/.dapr/bin/daprd" --version 2>/dev/null) (the Azure Container Apps line)"
DAPR_RUNTIME_PATH="$aca_dapr_root" cargo test -p e2e --features real-dapr --test e2e --locked -- aca:: pubsub:: invocation::

say "benchmark smoke run (checks the benchmark command still works, not its numbers)"
scripts/bench.sh --smoke

say "all tests passed in $((SECONDS - started)) s"
