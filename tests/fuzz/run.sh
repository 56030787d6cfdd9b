#!/usr/bin/env bash
# Runs the libFuzzer targets of a fuzz build directory for a short time each,
# on a copy of their seed corpus, JOBS at a time. Fails when any target
# crashes (or breaks a property); the input that did it is saved under
# BUILD/fuzz-artifacts/<target>/. `make check` calls this.
#
#   tests/fuzz/run.sh BUILD [SECONDS] [JOBS] [TARGET...]
set -euo pipefail

build=${1:?usage: run.sh BUILD [SECONDS] [JOBS] [TARGET...]}
seconds=${2:-20}
jobs=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_exec_frames fuzz_ndjson fuzz_models fuzz_error_body fuzz_values fuzz_target
    fuzz_dns fuzz_proxy_request fuzz_network_policy)
fi

run_one() {
  local name=$1 build=$2 seconds=$3 here=$4
  local corpus=$build/fuzz-corpus/$name artifacts=$build/fuzz-artifacts/$name
  local log=$build/fuzz-logs/$name.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # The working corpus lives in the build directory: the seeds are copied in
  # (new finds accumulate across runs there, never in the source tree).
  cp -n "$here/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  local dict=()
  case $name in
    fuzz_exec_frames | fuzz_ndjson | fuzz_models | fuzz_error_body | fuzz_network_policy)
      dict=(-dict="$here/dict/json.dict") ;;
    fuzz_values) dict=(-dict="$here/dict/values.dict") ;;
  esac
  if "$build/tests/fuzz/$name" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" \
       >"$log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz: $name FAILED; log $log, input in $artifacts/" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}
export -f run_one

printf '%s\n' "${targets[@]}" |
  xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$build" "$seconds" "$here"
