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

# The trace backend: the Zipkin server (UI and query API at http://127.0.0.1:9411/zipkin/), the
# exec jar Maven Central publishes as io.zipkin:zipkin-server:3.6.1:jar:exec. It needs Java 17.
ZIPKIN_VERSION=3.6.1
# sha256 of zipkin-server-3.6.1-exec.jar, checked on every use; Maven itself also checks the
# .sha1 Maven Central serves beside it (--strict-checksums).
ZIPKIN_SHA256=d8326e0ed4f43855dba81228f688554706e52578a7c782d9a90b73f8680654a1
# shellcheck disable=SC2034  # used by the scripts that source this file
ZIPKIN_PORT=9411

# Prints the path of the Zipkin server jar, downloading it once (135 MB) with Maven into a local
# repository in the cache. Fails, never skips, when it cannot be had or does not match the pin.
ensure_zipkin() {
  local repo="$CACHE_DIR/m2"
  local jar="$repo/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar"
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  if [[ ! -f "$jar" ]]; then
    command -v mvn >/dev/null || apt_install maven
    say "Zipkin: downloading io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec (135 MB, once) from Maven Central into $repo"
    mvn -B -q --strict-checksums -Dmaven.repo.local="$repo" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
      -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -Dtransitive=false >&2 \
      || die "could not download the Zipkin server with Maven (see above); scripts/run.sh can run without it: ZIPKIN=off scripts/run.sh"
  fi
  local sum
  sum="$(sha256sum "$jar" | cut -d' ' -f1)"
  [[ "$sum" == "$ZIPKIN_SHA256" ]] || die "$jar has sha256 $sum, not the pinned $ZIPKIN_SHA256: delete it and run again"
  printf '%s\n' "$jar"
}

# start_zipkin JAR LOG: starts Zipkin on 127.0.0.1:9411 only (in memory, so traces last until it
# stops), in the background, logging to LOG; sets ZIPKIN_PID. The caller waits for it.
start_zipkin() {
  # Armeria, Zipkin's HTTP server, takes its listen address from armeria.ports.
  java -jar "$1" \
    "--armeria.ports[0].address=127.0.0.1" "--armeria.ports[0].port=$ZIPKIN_PORT" \
    "--armeria.ports[0].protocols[0]=http" >"$2" 2>&1 &
  # shellcheck disable=SC2034  # read by the caller
  ZIPKIN_PID=$!
}

# A real OTLP/HTTP receiver for the end-to-end tests: Jaeger v2 (`cmd/jaeger`, an OpenTelemetry
# Collector build with Jaeger's in-memory trace store and query API), built from its Go module,
# github.com/jaegertracing/jaeger, because no registry here serves a prebuilt OTLP backend (the
# Zipkin server's OTLP module is not on Maven Central). Its UI is not built in (npm does not
# serve jaeger-ui); the tests read its HTTP query API.
JAEGER_VERSION=1.76.0

# Prints the path of the Jaeger binary, building it once (10 to 20 minutes on 2 cores) into
# $CACHE_DIR/jaeger-$JAEGER_VERSION. Fails, never skips, when it cannot be built.
ensure_jaeger() {
  local dir="$CACHE_DIR/jaeger-$JAEGER_VERSION"
  local bin="$dir/bin/jaeger"
  if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null || die "Go is needed to build Jaeger $JAEGER_VERSION from its Go module"
    local started=$SECONDS json src work="$CACHE_DIR/build/jaeger-$JAEGER_VERSION" log="$CACHE_DIR/build/jaeger-$JAEGER_VERSION.log"
    say "Jaeger: building github.com/jaegertracing/jaeger@v$JAEGER_VERSION ./cmd/jaeger from the Go module proxy into $dir (once: about 6 minutes on 2 idle cores, with 1.3 GB of Go modules)"
    # Checked against the Go checksum database, like every module the build fetches.
    json=$(GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@v$JAEGER_VERSION" 2>&1) \
      || die "cannot download github.com/jaegertracing/jaeger@v$JAEGER_VERSION through the Go module proxy ($(go env GOPROXY)): $json"
    src=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    [[ -d "$src" ]] || die "the Go module cache has no source for github.com/jaegertracing/jaeger@v$JAEGER_VERSION: $json"
    # Built as the main module, from a copy of its source: `go install …@version` refuses it,
    # since its go.mod has a replace directive (for sarama), which applies only to a main module.
    rm -rf "$work"
    mkdir -p "$(dirname "$work")" "$dir/bin"
    cp -r "$src" "$work"
    chmod -R u+w "$work"
    (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin.partial" ./cmd/jaeger) >"$log" 2>&1 \
      || { tail -n 30 "$log" >&2; die "building Jaeger failed (full log: $log)"; }
    mv "$bin.partial" "$bin"
    printf 'github.com/jaegertracing/jaeger v%s ./cmd/jaeger, built %s with %s in %s s\n' \
      "$JAEGER_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(go version | cut -d' ' -f3)" "$((SECONDS - started))" >"$dir/PROVENANCE"
    rm -rf "$work"
    say "Jaeger: built in $((SECONDS - started)) s"
  fi
  printf '%s\n' "$bin"
}
