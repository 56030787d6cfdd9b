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
"$bin" serve --state-dir "$state/engine" --token sdk-test-token >"$out" 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null; wait $engine 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
[ -n "$url" ] || { echo "run_js.sh: the engine did not start:" >&2; cat "$out" >&2; exit 1; }

cd "$work"
SPRITES_API_URL=$url SPRITES_TOKEN=sdk-test-token node --test ./*.test.mjs
