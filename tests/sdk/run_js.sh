#!/usr/bin/env bash
# Runs tests/sdk/js/*.test.mjs (the official JS SDK, @fly/sprites from npm,
# unchanged) against a freshly started local engine on a random port with a
# temporary state dir.
#
#   tests/sdk/run_js.sh SPRITESCRIPT_BIN WORK_DIR
set -euo pipefail
bin=$1
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The SDK, installed once per build dir from the committed lock file.
mkdir -p "$work"
cp "$here/js/package.json" "$here/js/package-lock.json" "$here"/js/*.test.mjs "$work/"
if [ ! -d "$work/node_modules/@fly/sprites" ] || [ "$here/js/package-lock.json" -nt "$work/node_modules" ]; then
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-sdk.XXXXXX")
out="$state/serve.out"
# Short idle timeouts: lifecycle.test.mjs watches running -> warm -> cold.
"$bin" serve --state-dir "$state/engine" --token sdk-test-token --idle-timeout 1s --cold-timeout 1s \
  >"$out" 2>&1 &
engine=$!
# (set -e applies in the trap too: nothing in it may fail before the rm.)
trap 'kill $engine 2>/dev/null || true; wait $engine 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
[ -n "$url" ] || { echo "run_js.sh: the engine did not start:" >&2; cat "$out" >&2; exit 1; }

# The SDK needs a global WebSocket: Node 22 and later have one; Node 20 only
# with --experimental-websocket (the SDK declares node >= 24 but runs on 20).
node_flags=()
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
  node_flags+=(--experimental-websocket)
fi

cd "$work"
status=0
SPRITES_API_URL=$url SPRITES_TOKEN=sdk-test-token node "${node_flags[@]}" --test ./*.test.mjs || status=$?

# SIGTERM stops a healthy engine with exit 0; anything else means it failed
# (crashed) during the tests, which explains the tests that failed after it.
kill $engine 2>/dev/null || true
engine_status=0
wait $engine 2>/dev/null || engine_status=$?
if [ $engine_status -ne 0 ]; then
  echo "run_js.sh: the engine failed (exit status $engine_status) during the tests; its output:" >&2
  cat "$out" >&2
  status=1
fi
exit $status
