#!/usr/bin/env bash
# The one test command. On a fresh machine it first installs what the tests need (the Dapr CLI
# and runtime, built from Dapr's Go modules when absent; redis-server from Debian packages), then:
#   1. cargo fmt --check and cargo clippy -D warnings
#   2. every test: handler tests, wiremock tests of the exact sidecar requests, and end-to-end
#      tests on the real daprd, Dapr CLI and Redis (these fail, never skip, when Dapr is missing)
#   3. the offline checks of the Azure deployment (scripts/check-infra.sh)
#   4. the benchmark in smoke mode (scripts/bench.sh --smoke): it must still run; no number is
#      checked, and its results go to target/bench/, not bench/results/
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
started=$SECONDS

say "making sure the Dapr CLI, the Dapr runtime and redis-server are installed"
ensure_tools

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "cargo test: unit, wiremock and end-to-end tests (real daprd $(daprd --version 2>/dev/null), real Redis)"
cargo test --workspace --locked

say "offline checks of the Azure deployment"
scripts/check-infra.sh

say "benchmark smoke run (checks the benchmark command still works, not its numbers)"
scripts/bench.sh --smoke

say "all tests passed in $((SECONDS - started)) s"
