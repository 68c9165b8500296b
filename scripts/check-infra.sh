#!/usr/bin/env bash
# Every offline check of the Azure deployment files, in one command:
#   1 parse        every infra/**/*.bicep parses with pycep-parser
#   2 types        property names match the official Bicep type data (and every resource is covered),
#                  or `bicep build` + `bicep lint` where a Bicep CLI is installed
#   3 checkov      security checks on Bicep, Dockerfiles and azure.yaml (offline, --skip-download)
#   4 azure-yaml   azure.yaml against azd's schema + azd's "language" rule
#   5 consistency  app ids, ports, component/topic/service names agree between code, dapr.yaml,
#                  components/, azure.yaml, Dockerfiles and infra/
#   6 cargo-build  each Dockerfile's own `cargo build` command succeeds in a mirror of the image
#                  build context (repository root minus .dockerignore)
#   7 negative     each check above fails on a deliberately broken copy of the files (and the
#                  script itself fails clearly when it finds no type data)
#   8 aca-model    infra/tests/aca_model.py (the deployment as JSON) reports what the Bicep says
# Exit status: 0 when all pass, 1 when any fails (all steps always run), 2 on a setup error.
#
# Python tools are installed (pinned, infra/tests/requirements.txt) into
#   ${DAPR_RUST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dapr-rust-tutorials}/infra-venv
# Data for steps 2 and 4, first match wins (see docs/deploy-azure.md, "Offline checks"):
#   - a Bicep CLI (`bicep`, `az bicep`, or azd's ~/.azd/bin/bicep): step 2 runs `bicep build` and
#     `bicep lint` instead of the type-data check (BICEP_CLI=... picks one, BICEP_CLI=none none);
#   - type data: $INFRA_CHECK_DIR if set, else <repo>/../shared/infra-check if present, else the
#     cache ${CACHE}/infra-check, else a download of the files pinned in
#     infra/tests/bicep-types.lock (sha256-checked) into that cache; INFRA_CHECK_NO_FETCH=1
#     forbids the download. Nothing found: exit 2, saying what was tried.
#   - azd's azure.yaml schema: the data directory's azure-yaml.schema.json, else the copy in
#     infra/tests/data/.
# CARGO_TARGET_DIR is honoured by step 6.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO="$REPO_ROOT"
VENV="$CACHE_DIR/infra-venv"
REQS="$REPO/infra/tests/requirements.txt"
LOCK="$REPO/infra/tests/bicep-types.lock"

# Its own say and die, defined after lib.sh's: results go to stdout, and setup errors exit 2.
say() { printf '%s\n' "$*"; }
die() { printf 'check-infra: %s\n' "$*" >&2; exit 2; }

# --- inputs ------------------------------------------------------------------------------------
# A Bicep CLI, if one is installed.
find_bicep() {
  if [ -n "${BICEP_CLI:-}" ]; then
    [ "$BICEP_CLI" = none ] && return 1
    printf '%s' "$BICEP_CLI"; return 0
  fi
  if command -v bicep >/dev/null 2>&1; then printf 'bicep'; return 0; fi
  if command -v az >/dev/null 2>&1 && az bicep version >/dev/null 2>&1; then printf 'az bicep'; return 0; fi
  if [ -x "$HOME/.azd/bin/bicep" ]; then printf '%s' "$HOME/.azd/bin/bicep"; return 0; fi
  return 1
}

# lock_entries: "sha256 relpath generated-path" lines of the lock file.
lock_entries() { grep -vE '^(#|commit |$)' "$LOCK"; }
lock_commit() { sed -n 's/^commit \([0-9a-f]\{40\}\)$/\1/p' "$LOCK"; }

# has_types DIR [verify]: every pinned types.json is under DIR/bicep-types (sha256-checked when
# verify is given).
has_types() {
  local dir="$1" verify="${2:-}" sum rel _
  [ -d "$dir/bicep-types" ] || return 1
  while read -r sum rel _; do
    [ -f "$dir/bicep-types/$rel" ] || return 1
    if [ -n "$verify" ] && [ "$(sha256sum "$dir/bicep-types/$rel" | cut -d' ' -f1)" != "$sum" ]; then
      return 1
    fi
  done < <(lock_entries)
}

# fetch_types DEST: download the pinned files into DEST/bicep-types, verify, then move in place.
fetch_types() {
  local dest="$1" commit tmp sum rel gen url
  [ "${INFRA_CHECK_NO_FETCH:-0}" = 1 ] && { echo "download disabled (INFRA_CHECK_NO_FETCH=1)"; return 1; }
  command -v curl >/dev/null 2>&1 || { echo "curl not found"; return 1; }
  commit="$(lock_commit)"
  [ -n "$commit" ] || { echo "no commit in $LOCK"; return 1; }
  tmp="$(mktemp -d)"
  while read -r sum rel gen; do
    url="https://raw.githubusercontent.com/Azure/bicep-types-az/$commit/generated/$gen"
    mkdir -p "$tmp/bicep-types/$(dirname "$rel")"
    if ! curl -fsSL --retry 2 --connect-timeout 10 -o "$tmp/bicep-types/$rel" "$url"; then
      echo "download failed: $url"; rm -rf "$tmp"; return 1
    fi
    if [ "$(sha256sum "$tmp/bicep-types/$rel" | cut -d' ' -f1)" != "$sum" ]; then
      echo "sha256 mismatch: $url"; rm -rf "$tmp"; return 1
    fi
  done < <(lock_entries)
  mkdir -p "$dest"
  rm -rf "$dest/bicep-types"
  mv "$tmp/bicep-types" "$dest/bicep-types"
  rm -rf "$tmp"
}

BICEP_FOUND="$(find_bicep)" || BICEP_FOUND=""
TRIED=()
DATA=""
if [ -n "${INFRA_CHECK_DIR:-}" ]; then
  if has_types "$INFRA_CHECK_DIR"; then DATA="$INFRA_CHECK_DIR"; else TRIED+=("INFRA_CHECK_DIR=$INFRA_CHECK_DIR: no complete bicep-types/"); fi
fi
if [ -z "$DATA" ]; then
  if has_types "$REPO/../shared/infra-check"; then DATA="$REPO/../shared/infra-check"
  else TRIED+=("$REPO/../shared/infra-check: not present or incomplete"); fi
fi
if [ -z "$DATA" ]; then
  if has_types "$CACHE_DIR/infra-check" verify; then DATA="$CACHE_DIR/infra-check"
  else TRIED+=("cache $CACHE_DIR/infra-check: empty or not matching infra/tests/bicep-types.lock"); fi
fi
if [ -z "$DATA" ] && [ -z "$BICEP_FOUND" ]; then
  if why="$(fetch_types "$CACHE_DIR/infra-check" 2>&1)"; then DATA="$CACHE_DIR/infra-check"
  else TRIED+=("download of the pinned type data from github.com/Azure/bicep-types-az: ${why:-failed}"); fi
fi
if [ -z "$DATA" ] && [ -z "$BICEP_FOUND" ]; then
  TRIED+=("Bicep CLI: none found (bicep, az bicep, ~/.azd/bin/bicep)")
  die "no Bicep type data and no Bicep CLI, so step 2 cannot run. Tried:
$(printf '    - %s\n' "${TRIED[@]}")
  Fix one of:
    - install the Bicep CLI (az bicep install, or azd installs ~/.azd/bin/bicep);
    - allow the download (network to raw.githubusercontent.com, unset INFRA_CHECK_NO_FETCH);
    - point INFRA_CHECK_DIR at a directory with bicep-types/<namespace>/<apiVersion>/types.json
      (the files listed in infra/tests/bicep-types.lock)."
fi
if [ -n "$BICEP_FOUND" ]; then
  export BICEP_CLI="$BICEP_FOUND"
  say "==> Bicep CLI: $BICEP_CLI (step 2 runs bicep build + lint)"
else
  unset BICEP_CLI
fi
if [ -n "$DATA" ]; then
  INFRA_CHECK_DIR="$(cd "$DATA" && pwd)"
  say "==> Bicep type data: $INFRA_CHECK_DIR/bicep-types"
else
  INFRA_CHECK_DIR="$CACHE_DIR/infra-check"  # no type data: only the schema fallback is used
fi
export INFRA_CHECK_DIR
if [ -f "$INFRA_CHECK_DIR/azure-yaml.schema.json" ]; then
  say "==> azd schema: $INFRA_CHECK_DIR/azure-yaml.schema.json"
else
  say "==> azd schema: infra/tests/data/azure-yaml.schema.json"
fi

# --- Python tools ------------------------------------------------------------------------------
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found (3.11 or newer is needed)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$("$PY" --version) is too old: 3.11 or newer is needed (tomllib)"
STAMP="$VENV/.requirements.sha256"
WANT="$( (cat "$REQS"; "$PY" --version) | sha256sum | cut -d' ' -f1)"
venv_ok() {
  [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] \
    && "$VENV/bin/python" -c 'import pycep, checkov, jsonschema, yaml' 2>/dev/null
}
if venv_ok; then
  say "==> Python tools: $VENV (up to date)"
else
  say "==> Python tools: creating $VENV and installing infra/tests/requirements.txt (pinned)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || die "cannot create the venv at $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" \
    || die "pip install -r $REQS failed (PyPI must be reachable the first time)"
  echo "$WANT" > "$STAMP"
  say "    installed: $("$VENV/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(checkov|pycep-parser|jsonschema|pyyaml)==' | tr '\n' ' ')"
fi
VPY="$VENV/bin/python"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the repository

# --- steps -------------------------------------------------------------------------------------
cd "$REPO" || die "cannot enter $REPO"
declare -a RESULTS=()
FAILED=0
step() {  # step <number> <name> <command...>
  local n="$1" name="$2"; shift 2
  say ""
  say "==> [$n/8] $name"
  local start=$SECONDS
  if "$@"; then
    RESULTS+=("PASS  $n $name ($((SECONDS - start))s)")
  else
    RESULTS+=("FAIL  $n $name ($((SECONDS - start))s)")
    FAILED=1
  fi
}

step 1 "Bicep parses (pycep-parser)"             "$VPY" infra/tests/steps.py parse
step 2 "Bicep property names (bicep-types)"      "$VPY" infra/tests/steps.py types
step 3 "checkov (bicep, dockerfile, secrets)"    "$VPY" infra/tests/steps.py checkov
step 4 "azure.yaml (azd schema)"                 "$VPY" infra/tests/steps.py azure-yaml
step 5 "consistency code/dapr/azd/images/infra"  "$VPY" infra/tests/steps.py consistency
step 6 "Dockerfile cargo build commands"         "$VPY" infra/tests/steps.py cargo-build
step 7 "negative tests (each check must fail)"   "$VPY" infra/tests/test_negative.py
step 8 "ACA model (infra/tests/aca_model.py)"     "$VPY" infra/tests/test_aca_model.py

say ""
say "==> Summary"
printf '    %s\n' "${RESULTS[@]}"
if [ "$FAILED" -ne 0 ]; then
  say "check-infra: FAILED"
  exit 1
fi
say "check-infra: all checks passed"
