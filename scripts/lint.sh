#!/usr/bin/env bash
# Lints the languages cargo clippy does not see: shellcheck on scripts/*.sh (following the lib.sh
# they source), and ruff (lint, then format --check) on the Python in bench/ and infra/tests/,
# configured by ruff.toml at the repository root. Installs what is missing: shellcheck from
# Debian packages, ruff (pinned below) from PyPI into a venv outside the work tree:
#   ${DAPR_RUST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dapr-rust-tutorials}/lint-venv
# Runs every linter, then exits 1 when any found something.
#
#   scripts/lint.sh          check
#   scripts/lint.sh --fix    let ruff fix what it can and reformat, then check
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

# Pinned so that a new ruff release, with new default rules, cannot fail an unchanged tree.
RUFF_VERSION=0.17.5
VENV="$CACHE_DIR/lint-venv"
PYTHON_DIRS=(bench infra/tests)

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

command -v shellcheck >/dev/null || apt_install shellcheck
command -v shellcheck >/dev/null || die "shellcheck is still not on PATH"
if [[ "$("$VENV/bin/ruff" --version 2>/dev/null)" != "ruff $RUFF_VERSION" ]]; then
  command -v python3 >/dev/null || die "python3 is needed to install ruff"
  say "installing ruff $RUFF_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "cannot create the venv at $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "ruff==$RUFF_VERSION" \
    || die "pip install ruff==$RUFF_VERSION failed (PyPI must be reachable the first time)"
fi
ruff=("$VENV/bin/ruff")

failed=()
say "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): scripts/*.sh"
shellcheck -x -P scripts scripts/*.sh || failed+=(shellcheck)

if [[ $fix -eq 1 ]]; then
  "${ruff[@]}" check --no-cache --fix "${PYTHON_DIRS[@]}" || true
  "${ruff[@]}" format --no-cache "${PYTHON_DIRS[@]}"
fi
say "ruff $RUFF_VERSION check: ${PYTHON_DIRS[*]}"
"${ruff[@]}" check --no-cache "${PYTHON_DIRS[@]}" || failed+=("ruff check")
say "ruff $RUFF_VERSION format --check: ${PYTHON_DIRS[*]}"
"${ruff[@]}" format --no-cache --check --output-format concise "${PYTHON_DIRS[@]}" || failed+=("ruff format (run scripts/lint.sh --fix)")

[[ ${#failed[@]} -eq 0 ]] || die "lint failed: ${failed[*]}"
say "lint: clean"
