#!/usr/bin/env bash
# Runs one Lua test of the Sprites API (tests/api/*_test.lua) against a
# freshly started local engine: random port, temporary state dir, its own
# token, handed to the script through SPRITES_API_URL and SPRITE_TOKEN, as a
# user's environment would. Also used for the examples (scripts/examples).
#
#   tests/api/run.sh SPRITESCRIPT_BIN SCRIPT [ARGS...]
set -euo pipefail
bin=$1
script=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

state=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-api.XXXXXX")
out="$state/serve.out"
"$bin" serve --state-dir "$state/engine" --token api-test-token ${ENGINE_FLAGS:-} >"$out" 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null || true; wait $engine 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 200); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
[ -n "$url" ] || { echo "run.sh: the engine did not start:" >&2; cat "$out" >&2; exit 1; }

status=0
SPRITESCRIPT_PATH="$here/../lua" SPRITES_API_URL=$url SPRITE_TOKEN=api-test-token \
  "$bin" run "$script" "$@" || status=$?
# Nothing may outlive the script: every command it started has ended (or
# its sprite is gone), unless the test detached it on purpose and says so
# with a session command containing "detached-on-purpose". Commands ended
# by a task's scope stop asynchronously: give them 5 s.
leaks=""
for _ in $(seq 50); do
  leaks=$(python3 - "$url" <<'PY'
import json, sys, urllib.request
url, headers = sys.argv[1], {"Authorization": "Bearer api-test-token"}
def get(path):
    return json.load(urllib.request.urlopen(urllib.request.Request(url + path, headers=headers)))
for sprite in get("/v1/sprites?max_results=50").get("sprites", []):
    for s in get("/v1/sprites/%s/exec" % sprite["name"]).get("sessions", []):
        if "detached-on-purpose" not in s.get("command", ""):
            print("%s: session %s (%s)" % (sprite["name"], s.get("id"), s.get("command")))
PY
)
  [ -z "$leaks" ] && break
  sleep 0.1
done
if [ -n "$leaks" ]; then
  echo "run.sh: $script left commands running:" >&2
  echo "$leaks" >&2
  [ $status -eq 0 ] && status=1
fi
if ! kill -0 $engine 2>/dev/null; then
  echo "run.sh: the engine died during the test:" >&2
  cat "$out" >&2
  exit 1
fi
exit $status
