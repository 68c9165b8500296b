#!/usr/bin/env bash
# Makes the Dapr CLI (`dapr`) and runtime (`daprd`, `placement`, `scheduler`) available the way
# `dapr init --slim` lays them out, without downloading release binaries:
#
#   1. An existing installation is reused: `dapr` on PATH, `daprd` in ~/.dapr/bin.
#   2. Otherwise the binaries come from the cache (default ~/.cache/dapr-rust-tutorials).
#   3. Otherwise they are built from Dapr's own Go modules, fetched through the Go module proxy,
#      and cached. Cold, this takes about 6 minutes on 2 cores and ~5 GB of Go caches.
#
# Pinned versions: runtime 1.18.3, CLI 1.18.0. Where the module proxy refuses a pinned module
# version, a documented substitute is used and recorded in the cache's PROVENANCE file (see
# "Fallbacks" below). Set DAPR_RUNTIME_PATH to lay out <path>/.dapr instead of ~/.dapr, and
# DAPR_RUST_CACHE to move the cache.
#
# The CLI goes where Dapr's own installer puts it, /usr/local/bin, when that is writable, so
# `dapr` works in every new terminal; otherwise into ~/.dapr/bin, and the script says exactly
# what to add to PATH.
#
# `--aca-runtime` also lays out runtime 1.16.2, the Dapr line Azure Container Apps runs, as
# <cache>/dapr-1.16.2/.dapr (use it with DAPR_RUNTIME_PATH=<cache>/dapr-1.16.2); it prints that
# path last. The tests run the Azure-parity run and the pub/sub and invocation tests on it too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNTIME_VERSION="1.18.3"
CLI_VERSION="1.18.0"
# The Dapr line Azure Container Apps runs (it was upgraded to 1.16.4; the module proxy here
# refuses 1.16.4 and serves 1.16.2).
ACA_RUNTIME_VERSION="1.16.2"
WANT_ACA_RUNTIME=""
for arg in "$@"; do
  case "$arg" in
    --aca-runtime) WANT_ACA_RUNTIME=1 ;;
    *) die "unknown argument $arg (usage: scripts/install-dapr.sh [--aca-runtime])" ;;
  esac
done

# Fallbacks, used only when the proxy refuses the pinned module versions (seen on networks that
# reach a partial mirror of proxy.golang.org: "403 Forbidden: This module version is not available").
#
# Runtime 1.18.3 pins durabletask-go v0.12.4 (the workflow engine) and a Pulsar client fork
# (github.com/twmb/pulsar-client-go, github.com/iskorotkov/avro/v2). The fallback builds the same
# 1.18.3 runtime source with durabletask-go v0.12.1 (what runtime 1.18.0 and 1.18.1 ship) and
# without the Pulsar pub/sub component. Neither is used by this project (no workflows, no Pulsar).
# These four are read through namerefs in build_runtime.
# shellcheck disable=SC2034
RUNTIME_FALLBACK_REPLACES_1_18_3=("github.com/dapr/durabletask-go=github.com/dapr/durabletask-go@v0.12.1")
# shellcheck disable=SC2034
RUNTIME_FALLBACK_REMOVES_1_18_3=("cmd/daprd/components/pubsub_pulsar.go")
# Runtime 1.16.2 pins components-contrib v1.16.3, which the proxy refuses; v1.16.5 is the contrib
# release of runtime 1.16.5 (the same patch line, the same replacement the CLI fallback uses).
# shellcheck disable=SC2034
RUNTIME_FALLBACK_REPLACES_1_16_2=("github.com/dapr/components-contrib=github.com/dapr/components-contrib@v1.16.5")
# shellcheck disable=SC2034
RUNTIME_FALLBACK_REMOVES_1_16_2=()
# CLI 1.18.0's source is refused outright; 1.16.5 is the newest CLI release it serves. Its only
# refused dependency, components-contrib v1.16.3 (reached through dapr/dapr v1.16.2), is replaced
# by v1.16.5, the contrib release of runtime 1.16.5. Every module is still verified against the
# checksum database.
CLI_FALLBACK_VERSION="1.16.5"
CLI_FALLBACK_REPLACES=("github.com/dapr/components-contrib=github.com/dapr/components-contrib@v1.16.5")

CLI_DIR="$CACHE_DIR/dapr-cli"
BUILD_DIR="$CACHE_DIR/build"

require_go() {
  command -v go >/dev/null || die "Go is needed to build Dapr from source (Dapr 1.18 needs Go 1.26.6 or later): https://go.dev/dl/"
}

# Prints the directory of module $1@$2 in the Go module cache, downloading it through the proxy.
module_dir() {
  local json
  json=$(GOFLAGS=-mod=mod go mod download -json "$1@$2" 2>&1) || true
  local dir
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [[ -z "$dir" || ! -d "$dir" ]]; then
    printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' >&2
    return 1
  fi
  printf '%s\n' "$dir"
}

# Prints the commit of module $1@$2 recorded by the proxy, or "unknown".
module_commit() {
  local info
  info=$(GOFLAGS=-mod=mod go mod download -json "$1@$2" 2>/dev/null | sed -n 's/^[[:space:]]*"Hash": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)
  printf '%s\n' "${info:-unknown}"
}

# Copies module source $1 into a fresh writable build directory $2.
fresh_copy() {
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  cp -r "$1" "$2"
  chmod -R u+w "$2"
}

# Whether build log $1 failed because the proxy refused a module.
refused_by_proxy() {
  grep -qE '403 Forbidden|This module version is not available' "$1"
}

# build_runtime VERSION: builds daprd, placement and scheduler VERSION into
# $CACHE_DIR/dapr-runtime-VERSION/bin.
build_runtime() {
  require_go
  local RUNTIME_VERSION="$1"
  local RUNTIME_DIR="$CACHE_DIR/dapr-runtime-$1"
  local key="${RUNTIME_VERSION//./_}"
  local -n fallback_replaces="RUNTIME_FALLBACK_REPLACES_$key"
  local -n fallback_removes="RUNTIME_FALLBACK_REMOVES_$key"
  local started=$SECONDS src work log commit notes=""
  say "building the Dapr runtime $RUNTIME_VERSION (daprd, placement, scheduler) from github.com/dapr/dapr; this takes a few minutes"
  src=$(module_dir github.com/dapr/dapr "v$RUNTIME_VERSION") || die "cannot download github.com/dapr/dapr@v$RUNTIME_VERSION through the Go module proxy ($(go env GOPROXY))"
  commit=$(module_commit github.com/dapr/dapr "v$RUNTIME_VERSION")
  work="$BUILD_DIR/dapr-$RUNTIME_VERSION"
  log="$BUILD_DIR/dapr-$RUNTIME_VERSION.log"
  mkdir -p "$RUNTIME_DIR/bin"
  local ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$RUNTIME_VERSION -X github.com/dapr/dapr/pkg/buildinfo.gitcommit=$commit"
  local attempt
  for attempt in pinned fallback; do
    fresh_copy "$src" "$work"
    if [[ $attempt == fallback ]]; then
      say "the module proxy refused some pinned dependencies; building with the documented fallback"
      local r f
      for r in "${fallback_replaces[@]}"; do (cd "$work" && go mod edit -replace "$r"); notes+="replace $r"$'\n'; done
      for f in "${fallback_removes[@]}"; do rm -f "$work/$f"; notes+="remove $f"$'\n'; done
    fi
    if (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags stablecomponents -ldflags "$ldflags" -o "$RUNTIME_DIR/bin/daprd" ./cmd/daprd) >"$log" 2>&1; then
      break
    fi
    if [[ $attempt == pinned ]] && refused_by_proxy "$log"; then
      grep -oE 'reading https://[^ ]+: 403 Forbidden' "$log" | sort -u | sed 's/^/    refused: /' >&2 || true
      continue
    fi
    tail -n 30 "$log" >&2
    die "building daprd failed (full log: $log)"
  done
  local bin
  for bin in placement scheduler; do
    (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$RUNTIME_DIR/bin/$bin" "./cmd/$bin") >>"$log" 2>&1 \
      || { tail -n 30 "$log" >&2; die "building $bin failed (full log: $log)"; }
  done
  {
    echo "github.com/dapr/dapr v$RUNTIME_VERSION (commit $commit), built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3)"
    echo "build tags: stablecomponents; build time: $((SECONDS - started)) s"
    print_notes "$notes"
  } >"$RUNTIME_DIR/PROVENANCE"
  rm -rf "$work"
  say "built the Dapr runtime in $((SECONDS - started)) s; provenance in $RUNTIME_DIR/PROVENANCE"
}

build_cli() {
  require_go
  local started=$SECONDS src work log version notes=""
  say "building the Dapr CLI $CLI_VERSION from github.com/dapr/cli"
  mkdir -p "$CLI_DIR/bin"
  log="$BUILD_DIR/dapr-cli.log"
  for version in "$CLI_VERSION" "$CLI_FALLBACK_VERSION"; do
    if ! src=$(module_dir github.com/dapr/cli "v$version" 2>"$log"); then
      refused_by_proxy "$log" || { cat "$log" >&2; die "cannot download github.com/dapr/cli@v$version"; }
      say "the module proxy refuses github.com/dapr/cli@v$version; trying the documented fallback $CLI_FALLBACK_VERSION"
      continue
    fi
    work="$BUILD_DIR/dapr-cli-$version"
    fresh_copy "$src" "$work"
    if [[ $version == "$CLI_FALLBACK_VERSION" ]]; then
      notes="CLI $CLI_FALLBACK_VERSION instead of $CLI_VERSION (source of $CLI_VERSION refused by the module proxy)"$'\n'
      local r
      for r in "${CLI_FALLBACK_REPLACES[@]}"; do (cd "$work" && go mod edit -replace "$r"); notes+="replace $r"$'\n'; done
    fi
    if (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X main.version=$version -X main.apiVersion=1.0" -o "$CLI_DIR/bin/dapr" .) >"$log" 2>&1; then
      {
        echo "github.com/dapr/cli v$version, built $(date -u +%Y-%m-%dT%H:%M:%SZ); build time: $((SECONDS - started)) s"
        print_notes "$notes"
      } >"$CLI_DIR/PROVENANCE"
      rm -rf "$work"
      say "built the Dapr CLI $version in $((SECONDS - started)) s"
      return
    fi
    tail -n 30 "$log" >&2
    die "building the Dapr CLI $version failed (full log: $log)"
  done
  die "no Dapr CLI version could be fetched through the Go module proxy"
}

print_notes() {
  if [[ -z "$1" ]]; then echo "no substitutions"; return; fi
  echo "fallback applied:"
  printf '%s' "$1" | sed 's/^/  /'
}

cli_version() {
  "$1" version 2>/dev/null | sed -n 's/^CLI version: *\([^ ]*\).*/\1/p'
}

install_binary() {
  install -m 0755 "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}

# init_home_files HOME: what `dapr init --slim` creates besides the binaries, an empty components
# folder and a default configuration without a tracing exporter. Existing files are left alone.
init_home_files() {
  mkdir -p "$1/components"
  [[ -f "$1/config.yaml" ]] && return
  cat >"$1/config.yaml" <<'YAML'
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec: {}
YAML
}

# lay_out_home HOME VERSION: daprd, placement and scheduler VERSION in HOME/bin, built or taken
# from the cache.
lay_out_home() {
  local home="$1" version="$2" runtime_dir="$CACHE_DIR/dapr-runtime-$2"
  [[ -x "$runtime_dir/bin/daprd" ]] || build_runtime "$version"
  mkdir -p "$home/bin"
  for bin in daprd placement scheduler; do install_binary "$runtime_dir/bin/$bin" "$home/bin/$bin"; done
  init_home_files "$home"
}

# The runtime: reuse ~/.dapr/bin/daprd, else install it (and placement, scheduler) from the cache.
if [[ -x "$DAPR_HOME/bin/daprd" ]]; then
  installed=$("$DAPR_HOME/bin/daprd" --version 2>/dev/null || echo unknown)
  say "daprd: using $DAPR_HOME/bin/daprd ($installed)"
  [[ $installed == "$RUNTIME_VERSION" ]] || warn "this project is tested with Dapr runtime $RUNTIME_VERSION; found $installed"
else
  lay_out_home "$DAPR_HOME" "$RUNTIME_VERSION"
  say "daprd: installed $RUNTIME_VERSION into $DAPR_HOME/bin"
fi
init_home_files "$DAPR_HOME"

# The CLI: reuse one on PATH, else install it where Dapr's installer does (/usr/local/bin) when
# that is writable, else next to the runtime.
if command -v dapr >/dev/null; then
  say "dapr CLI: using $(command -v dapr) ($(cli_version dapr))"
else
  [[ -x "$CLI_DIR/bin/dapr" ]] || build_cli
  if [[ -w /usr/local/bin ]]; then
    install_binary "$CLI_DIR/bin/dapr" /usr/local/bin/dapr
    say "dapr CLI: installed /usr/local/bin/dapr ($(cli_version /usr/local/bin/dapr))"
  elif [[ -x "$DAPR_HOME/bin/dapr" ]]; then
    say "dapr CLI: using $DAPR_HOME/bin/dapr ($(cli_version "$DAPR_HOME/bin/dapr"))"
    say "  /usr/local/bin is not writable: to use dapr in a new terminal, add this line to ~/.bashrc (or your shell's profile):"
    say "    export PATH=\"$DAPR_HOME/bin:\$PATH\""
  else
    install_binary "$CLI_DIR/bin/dapr" "$DAPR_HOME/bin/dapr"
    say "dapr CLI: installed $DAPR_HOME/bin/dapr ($(cli_version "$DAPR_HOME/bin/dapr"))"
    say "  /usr/local/bin is not writable: to use dapr in a new terminal, add this line to ~/.bashrc (or your shell's profile):"
    say "    export PATH=\"$DAPR_HOME/bin:\$PATH\""
  fi
fi

# The Azure Container Apps runtime line, on request, in a home of its own.
if [[ -n $WANT_ACA_RUNTIME ]]; then
  aca_root="$CACHE_DIR/dapr-$ACA_RUNTIME_VERSION"
  lay_out_home "$aca_root/.dapr" "$ACA_RUNTIME_VERSION"
  say "daprd $ACA_RUNTIME_VERSION (the Azure Container Apps line): use DAPR_RUNTIME_PATH=$aca_root"
  printf '%s\n' "$aca_root"
fi
