# Shared shell helpers for the scripts in this folder: logging, paths, and the tools the tests
# and the run command need (the Dapr CLI and runtime, redis-server).
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Built binaries and tool environments live here, outside the work tree, and survive clones.
# shellcheck disable=SC2034  # used by the scripts that source this file
CACHE_DIR="${DAPR_RUST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dapr-rust-tutorials}"
# The Dapr install directory `dapr init` uses, or `$DAPR_RUNTIME_PATH/.dapr` (the CLI's override).
if [[ -n "${DAPR_RUNTIME_PATH:-}" ]]; then
  DAPR_HOME="$DAPR_RUNTIME_PATH/.dapr"
else
  DAPR_HOME="$HOME/.dapr"
fi

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs apt-get as root, through sudo when needed.
apt_install() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "installing $* needs root (or sudo): run 'apt-get install -y $*' as root"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || die "$* is missing and this is not a Debian/Ubuntu system: install it with your package manager"
  say "installing $* from Debian packages (apt-get)"
  # One package index refresh per run, however many packages follow.
  if [[ -z "${APT_UPDATED:-}" ]]; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    export APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

# Puts the Dapr CLI, the runtime and redis-server on PATH, building or installing what is missing.
ensure_tools() {
  "$REPO_ROOT/scripts/install-dapr.sh"
  export PATH="$DAPR_HOME/bin:$PATH"
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
  fi
  command -v redis-server >/dev/null || die "redis-server is still not on PATH"
}
