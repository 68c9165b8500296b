#!/usr/bin/env bash
# Every offline check of the Azure deployment files, in one command:
#   1 parse        every infra/**/*.bicep parses with pycep-parser
#   2 types        property names match the official Bicep type data (and every resource is covered)
#   3 checkov      security checks on Bicep, Dockerfiles and azure.yaml (offline, --skip-download)
#   4 azure-yaml   azure.yaml against azd's schema + azd's "language" rule
#   5 consistency  app ids, ports, component/topic/service names agree between code, dapr.yaml,
#                  components/, azure.yaml, Dockerfiles and infra/
#   6 cargo-build  each Dockerfile's own `cargo build` command succeeds in a mirror of the image
#                  build context (repository root minus .dockerignore)
#   7 negative     each check above fails on a deliberately broken copy of the files
# Exit status: 0 when all pass, 1 when any fails (all steps always run), 2 on a setup error.
#
# Python tools are installed (pinned, infra/tests/requirements.txt) into
#   ${DAPR_RUST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dapr-rust-tutorials}/infra-venv
# The type data and validators come from ${INFRA_CHECK_DIR:-<repo>/../shared/infra-check}.
# CARGO_TARGET_DIR is honoured by step 6.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO="$REPO_ROOT"
INFRA_CHECK_DIR="${INFRA_CHECK_DIR:-$REPO/../shared/infra-check}"
VENV="$CACHE_DIR/infra-venv"
REQS="$REPO/infra/tests/requirements.txt"

# Its own say and die, defined after lib.sh's: results go to stdout, and setup errors exit 2.
say() { printf '%s\n' "$*"; }
die() { printf 'check-infra: %s\n' "$*" >&2; exit 2; }

# --- inputs ------------------------------------------------------------------------------------
for f in validate_bicep_types.py validate_azure_yaml.py azure-yaml.schema.json bicep-types; do
  if [ ! -e "$INFRA_CHECK_DIR/$f" ]; then
    die "missing $INFRA_CHECK_DIR/$f.
  The offline validators and type data are not in this repository. Point INFRA_CHECK_DIR at a
  copy of the infra-check directory (validate_bicep_types.py, validate_azure_yaml.py,
  azure-yaml.schema.json, bicep-types/), e.g.
    INFRA_CHECK_DIR=/path/to/infra-check scripts/check-infra.sh
  To rebuild it elsewhere: bicep-types/<namespace>/<apiVersion>/types.json from
  github.com/Azure/bicep-types-az (generated/), azure-yaml.schema.json from
  github.com/Azure/azure-dev (schemas/v1.0/azure.yaml.json). See docs/deploy-azure.md."
  fi
done
INFRA_CHECK_DIR="$(cd "$INFRA_CHECK_DIR" && pwd)"
export INFRA_CHECK_DIR

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
cd "$REPO"
declare -a RESULTS=()
FAILED=0
step() {  # step <number> <name> <command...>
  local n="$1" name="$2"; shift 2
  say ""
  say "==> [$n/7] $name"
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

say ""
say "==> Summary"
printf '    %s\n' "${RESULTS[@]}"
if [ "$FAILED" -ne 0 ]; then
  say "check-infra: FAILED"
  exit 1
fi
say "check-infra: all checks passed"
