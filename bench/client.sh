#!/usr/bin/env bash
# bench/client.sh: this C++ client (src/client, driven by bench/client_bench)
# against the official JS SDK (@fly/sprites on node, bench/client_bench.mjs),
# in the same run, against the same local engine.
#
#   bench/client.sh [path-to-spritescript] [path-to-client_bench]
#
# Defaults: build/spritescript and bench/client_bench next to it (the build
# dir's bench/client_bench). Builds nothing. Installs the SDK from
# tests/sdk/js's lock file into BIN_DIR/bench-sdk-js the first time (npm ci;
# BENCH_SDK_DIR to use another). Starts one engine on a random loopback port
# with a temporary state dir, a random token and idle timeouts long enough
# not to hibernate mid-run; creates one sprite and warms it; runs each
# benchmark ROUNDS times per client, the two taking turns (each run its own
# process, so its peak RSS is that benchmark's); prints a table with the
# ratios and the targets met / NOT met; stops the engine and removes the
# state dir however the run ends.
#
# Environment (README.md, "The client against the JS SDK"):
#   SEQ_N=1000 PAR_N=1000 PAR_K=64 STREAM_BYTES=1073741824 SESSIONS_N=1000
#   SESSIONS_K=64 ROUNDS=3 WARMUP=20 SECTIONS="seq par stream sessions"
#   JS_SESSIONS=1 (0: the 1,000-session run for the C++ client only)
#
# Exit status: 0 when every benchmark ran (slow numbers are reported, not
# failed), 1 when one could not run or the engine died, 2 for setup problems.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
if [ ! -x "$bin" ]; then
  echo "client.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
driver=${2:-$(dirname "$bin")/bench/client_bench}
if [ ! -x "$driver" ]; then
  echo "client.sh: no client_bench at $driver (it is built with spritescript)" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "client.sh: node and npm are needed (tools/install-deps.sh bench installs them)" >&2
  exit 2
fi
node_flags=()
if [ "$(node -e 'process.stdout.write(typeof WebSocket)')" != function ]; then
  if [ "$(node --experimental-websocket -e 'process.stdout.write(typeof WebSocket)' 2>/dev/null)" = function ]; then
    node_flags=(--experimental-websocket)
  else
    echo "client.sh: this node has no WebSocket, which the JS SDK needs (node 22+, or 20 with --experimental-websocket)" >&2
    exit 2
  fi
fi

SEQ_N=${SEQ_N:-1000}
PAR_N=${PAR_N:-1000}
PAR_K=${PAR_K:-64}
STREAM_BYTES=${STREAM_BYTES:-1073741824}
SESSIONS_N=${SESSIONS_N:-1000}
SESSIONS_K=${SESSIONS_K:-64}
ROUNDS=${ROUNDS:-3}
JS_SESSIONS=${JS_SESSIONS:-1}
SECTIONS=${SECTIONS:-seq par stream sessions}
export WARMUP=${WARMUP:-20}

# The SDK, installed once per build dir from the committed lock file (as
# tests/sdk/run_js.sh does).
sdk=${BENCH_SDK_DIR:-$(dirname "$bin")/bench-sdk-js}
lock=$here/../tests/sdk/js/package-lock.json
if [ ! -d "$sdk/node_modules/@fly/sprites" ] || [ "$lock" -nt "$sdk/node_modules" ]; then
  echo "client.sh: installing @fly/sprites into $sdk (npm ci)" >&2
  mkdir -p "$sdk"
  cp "$here/../tests/sdk/js/package.json" "$lock" "$sdk/"
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
export BENCH_SDK_DIR=$sdk

# Each session holds pipes and a socket in the engine and a socket here.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-client-bench.XXXXXX")
engine_pid=""
run_pid=""

# shellcheck disable=SC2317  # run by the trap
cleanup() {
  local i
  set +e
  if [ -n "$run_pid" ]; then
    kill -TERM "$run_pid" 2>/dev/null
    wait "$run_pid" 2>/dev/null
  fi
  if [ -n "$engine_pid" ]; then
    kill -TERM "$engine_pid" 2>/dev/null
    for (( i = 0; i < 50; i++ )); do
      kill -0 "$engine_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$engine_pid" 2>/dev/null
    wait "$engine_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
"$bin" serve --listen 127.0.0.1:0 --state-dir "$work/state" --token "$token" \
  --idle-timeout 1h --cold-timeout 2h >"$work/engine.out" 2>"$work/engine.err" </dev/null &
engine_pid=$!
url=""
for (( i = 0; i < 100; i++ )); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/engine.out" 2>/dev/null | head -1 || true)
  [ -n "$url" ] && break
  kill -0 "$engine_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "client.sh: the engine did not start:" >&2
  cat "$work/engine.out" "$work/engine.err" >&2
  exit 1
fi
export SPRITES_API_URL=$url SPRITES_TOKEN=$token BENCH_SPRITE=bench

engine_alive() {
  if kill -0 "$engine_pid" 2>/dev/null; then return 0; fi
  local status=0
  wait "$engine_pid" 2>/dev/null || status=$?
  local what="exit status $status"
  if [ "$status" -gt 128 ]; then what="killed by signal $((status - 128))"; fi
  echo "client.sh: the engine (pid $engine_pid) died during the run ($what); its stderr:" >&2
  sed 's/^/  /' "$work/engine.err" >&2
  engine_pid=""
  return 1
}

# The engine's CPU time so far, in seconds (utime + stime from /proc).
engine_cpu() {
  awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / t }' \
    "/proc/$engine_pid/stat" 2>/dev/null || echo 0
}

cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
# shellcheck disable=SC1091
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
sdk_version=$(node -p "require('$sdk/node_modules/@fly/sprites/package.json').version" 2>/dev/null || echo '?')
echo "spritescript client against the JS SDK, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  binary:  $bin: $("$bin" version)"
echo "  driver:  $driver"
echo "  machine: $(nproc) CPUs, ${cpu:-unknown CPU}, ${mem:-? GiB}; ${os:-unknown OS}, Linux $(uname -r)"
echo "  JS SDK:  @fly/sprites $sdk_version on node $(node --version) ${node_flags[*]}"
echo "  fds:     ulimit -n $(ulimit -n)"
echo "  load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the start"
echo

results=$work/results.ndjson
: >"$results"
status=0

# run_one CLIENT ROUND ARGS...: one benchmark process; appends its JSON line
# (with the engine's CPU over the run) to $results. In the background, so
# that a signal to this script runs the trap at once.
run_one() {
  local who=$1 round=$2 before after line rc=0
  shift 2
  before=$(engine_cpu)
  if [ "$who" = cpp ]; then
    "$driver" "$@" >"$work/run.out" 2>"$work/run.err" </dev/null &
  else
    node "${node_flags[@]}" "$here/client_bench.mjs" "$@" >"$work/run.out" 2>"$work/run.err" </dev/null &
  fi
  run_pid=$!
  wait "$run_pid" || rc=$?
  run_pid=""
  after=$(engine_cpu)
  line=$(tail -1 "$work/run.out")
  if [ "$rc" -ne 0 ] || [ "${line:0:1}" != "{" ]; then
    echo "client.sh: $who $* failed (exit status $rc):" >&2
    sed 's/^/  /' "$work/run.err" >&2
    printf '{"client":"%s","bench":"%s","round":%d,"failed":true}\n' "$who" "$1" "$round" >>"$results"
    status=1
  else
    printf '%s,"round":%d,"engine_cpu_s":%s}\n' "${line%\}}" "$round" \
      "$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')" >>"$results"
  fi
  engine_alive || exit 1
}

# both ROUND ARGS...: the two clients, taking turns on who goes first.
both() {
  local round=$1
  shift
  if (( round % 2 )); then
    run_one cpp "$round" "$@"
    run_one js "$round" "$@"
  else
    run_one js "$round" "$@"
    run_one cpp "$round" "$@"
  fi
}

echo "running: create the sprite and warm it" >&2
run_one cpp 0 create
for section in $SECTIONS; do
  case $section in
    seq | par | stream)
      for (( r = 1; r <= ROUNDS; r++ )); do
        case $section in
          seq) echo "running: $SEQ_N sequential execs of true, round $r/$ROUNDS" >&2
               both "$r" seq "$SEQ_N" ;;
          par) echo "running: $PAR_N execs of true, $PAR_K in flight, round $r/$ROUNDS" >&2
               both "$r" par "$PAR_N" "$PAR_K" ;;
          stream) echo "running: stream $STREAM_BYTES bytes of stdout, round $r/$ROUNDS" >&2
                  both "$r" stream "$STREAM_BYTES" ;;
        esac
      done ;;
    sessions)
      echo "running: $SESSIONS_N sessions open at once (C++ client)" >&2
      run_one cpp 1 sessions "$SESSIONS_N" "$SESSIONS_K"
      if [ "$JS_SESSIONS" = 1 ]; then
        echo "running: $SESSIONS_N sessions open at once (JS SDK)" >&2
        run_one js 1 sessions "$SESSIONS_N" "$SESSIONS_K"
      fi ;;
    *) echo "client.sh: unknown section '$section' (seq par stream sessions)" >&2; exit 2 ;;
  esac
done

node "$here/client_bench.mjs" report "$results"
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${KEEP_RESULTS:-}" ]; then cp "$results" "$KEEP_RESULTS"; fi
exit "$status"
