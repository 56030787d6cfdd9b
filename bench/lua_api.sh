#!/usr/bin/env bash
# bench/lua_api.sh: what the Lua layer costs over the C++ client alone.
#
#   bench/lua_api.sh [path-to-spritescript] [path-to-client_bench]
#
# One engine (temporary state dir, random token, default timeouts), one
# sprite. For each benchmark, alternating C++ (client_bench) and Lua
# (bench/lua_api.lua) runs, ROUNDS times (default 3), the best of each kept:
#   seq     1,000 sequential `true` execs
#   par     1,000 `true` execs, 64 in flight
#   stream  1 GiB of stdout read through p:read() (C++: ExecProcess::next)
# Prints both times and the Lua overhead (target: under 10%). Environment:
# ROUNDS, SEQ_N, PAR_N, PAR_K, STREAM_BYTES.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
cbench=${2:-$(dirname "$bin")/bench/client_bench}
rounds=${ROUNDS:-3}
seq_n=${SEQ_N:-1000}
par_n=${PAR_N:-1000}
par_k=${PAR_K:-64}
stream_bytes=${STREAM_BYTES:-1073741824}
for f in "$bin" "$cbench"; do
  [ -x "$f" ] || { echo "lua_api.sh: no executable at $f (build first: make build)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-lua-bench.XXXXXX")
engine=""
trap '[ -n "$engine" ] && kill "$engine" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --listen 127.0.0.1:0 --state-dir "$work/state" --token "$token" >"$work/engine.log" 2>&1 &
engine=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/engine.log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/engine.log" | head -1)
[ -n "$url" ] || { echo "lua_api.sh: the engine did not start" >&2; cat "$work/engine.log" >&2; exit 1; }
export SPRITES_API_URL=$url SPRITE_TOKEN=$token BENCH_SPRITE=bench
"$cbench" create >/dev/null

seconds_of() { sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p'; }
best() { sort -g | head -1; }

echo "machine: $(nproc) vCPU, kernel $(uname -r); date: $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-8s %12s %12s %10s\n' bench "C++ best s" "Lua best s" "overhead"
for bench in seq par stream; do
  case $bench in
    seq) args=("$seq_n") ;;
    par) args=("$par_n" "$par_k") ;;
    stream) args=("$stream_bytes") ;;
  esac
  cpp=(); lua=()
  for (( r = 0; r < rounds; r++ )); do
    cpp+=("$("$cbench" "$bench" "${args[@]}" | seconds_of)")
    lua+=("$("$bin" run "$here/lua_api.lua" "$bench" "${args[@]}" | seconds_of)")
  done
  c=$(printf '%s\n' "${cpp[@]}" | best)
  l=$(printf '%s\n' "${lua[@]}" | best)
  awk -v b="$bench" -v c="$c" -v l="$l" \
    'BEGIN { o = (l / c - 1) * 100; printf "%-8s %12.3f %12.3f %9.1f%% %s\n", b, c, l, o, (o < 10 ? "(met)" : "(NOT met)") }'
done
