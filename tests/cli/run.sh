#!/usr/bin/env bash
# Runs one test of the command line (tests/cli/*_test.py) against a freshly
# started local engine: random port, temporary state dir, its own token,
# handed over through SPRITES_API_URL and SPRITE_TOKEN as a user's
# environment would; SPRITESCRIPT is the binary under test. The test runs in
# an empty temporary directory (its .sprite files stay there).
#
#   tests/cli/run.sh SPRITESCRIPT_BIN TEST.py
set -euo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
test=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

state=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-cli.XXXXXX")
out="$state/serve.out"
"$bin" serve --state-dir "$state/engine" --token cli-test-token >"$out" 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null || true; wait $engine 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 200); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
[ -n "$url" ] || { echo "run.sh: the engine did not start:" >&2; cat "$out" >&2; exit 1; }

mkdir -p "$state/work" "$state/home"
status=0
(cd "$state/work" && PYTHONPATH="$here" SPRITESCRIPT="$bin" SPRITES_API_URL=$url \
  SPRITE_TOKEN=cli-test-token XDG_CONFIG_HOME="$state/home/config" \
  XDG_STATE_HOME="$state/home/state" XDG_DATA_HOME="$state/home/data" NO_COLOR= \
  python3 "$test") || status=$?
if ! kill -0 $engine 2>/dev/null; then
  echo "run.sh: the engine died during the test:" >&2
  cat "$out" >&2
  exit 1
fi
exit $status
