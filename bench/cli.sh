#!/usr/bin/env bash
# bench/cli.sh: the everyday commands' wall time, `spritescript ls` and
# `spritescript exec -- true`, each a fresh process as a user types it,
# against a node script doing the same with the official JS SDK
# (@fly/sprites), in the same run, against the same local engine.
#
#   bench/cli.sh [path-to-spritescript]       RUNS=30 (per command, per contender)
#
# Installs the SDK from tests/sdk/js's lock file into BIN_DIR/bench-sdk-js the
# first time (as bench/client.sh does). Prints medians and p90s in ms and the
# ratios; stops the engine and removes its state dir however the run ends.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
[ -x "$bin" ] || { echo "cli.sh: no spritescript binary at $bin (make build)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "cli.sh: node and npm are needed (tools/install-deps.sh bench)" >&2; exit 2; }
node_flags=()
[ "$(node -e 'process.stdout.write(typeof WebSocket)')" = function ] || node_flags=(--experimental-websocket)
RUNS=${RUNS:-30}

sdk=${BENCH_SDK_DIR:-$(dirname "$bin")/bench-sdk-js}
lock=$here/../tests/sdk/js/package-lock.json
if [ ! -d "$sdk/node_modules/@fly/sprites" ] || [ "$lock" -nt "$sdk/node_modules" ]; then
  mkdir -p "$sdk"
  cp "$here/../tests/sdk/js/package.json" "$lock" "$sdk/"
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-cli-bench.XXXXXX")
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --state-dir "$work/engine" --token "$token" --idle-timeout 10m >"$work/serve.out" 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null || true; wait $engine 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 200); do grep -q "listening on" "$work/serve.out" && break; sleep 0.05; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
[ -n "$url" ] || { echo "cli.sh: the engine did not start" >&2; cat "$work/serve.out" >&2; exit 1; }
export SPRITES_API_URL=$url SPRITE_TOKEN=$token SPRITES_TOKEN=$token

cat >"$sdk/cli_bench.mjs" <<'JS'
import { SpritesClient } from '@fly/sprites';
const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });
if (process.argv[2] === 'ls') {
  const list = await client.listSprites();
  for (const s of list.sprites) console.log(s.name, s.status);
} else {
  const r = await client.sprite(process.argv[3]).execFile('true');
  process.exitCode = r.exitCode;
}
JS

"$bin" create bench-cli >/dev/null
"$bin" exec -s bench-cli -- true   # wake it

# Median and p90 wall time (ms) of RUNS runs of a command line.
measure() {
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs, argv = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(runs):
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times.append((time.perf_counter() - t) * 1000)
    if r.returncode != 0:
        sys.exit("failed: %s: %s" % (" ".join(argv), r.stderr.decode()))
times.sort()
print("%.1f %.1f" % (times[len(times) // 2], times[int(len(times) * 0.9)]))
PY
}

echo "machine: $(nproc) vCPU, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
printf '%-28s %12s %12s %12s %12s %8s\n' command "ss p50" "ss p90" "js p50" "js p90" "js/ss"
for what in ls exec; do
  if [ $what = ls ]; then
    ss=$(measure "$bin" ls); js=$(cd "$sdk" && measure node "${node_flags[@]}" cli_bench.mjs ls)
    label="ls"
  else
    ss=$(measure "$bin" exec -s bench-cli -- true)
    js=$(cd "$sdk" && measure node "${node_flags[@]}" cli_bench.mjs exec bench-cli)
    label="exec -- true"
  fi
  read -r ss50 ss90 <<<"$ss"
  read -r js50 js90 <<<"$js"
  printf '%-28s %12s %12s %12s %12s %7.2fx\n' "$label" "$ss50" "$ss90" "$js50" "$js90" \
    "$(python3 -c "print($js50 / $ss50)")"
done
