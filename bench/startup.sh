#!/usr/bin/env bash
# bench/startup.sh: wall time to start and exit with an empty program.
#
#   bench/startup.sh [path-to-spritescript] [runs]
#
# Times `X -e ''` for spritescript, luajit, lua5.1 (when installed) and node,
# plus /bin/true as the floor (what starting any process costs here). Every
# contender is timed by the same loop in this script, so the numbers compare:
#   * 3 untimed warm-up runs each (page cache, dynamic loader);
#   * then `runs` rounds (default 20); each round runs every contender once,
#     in turn, so a slow moment of the machine hits them all alike;
#   * the clock is bash's $EPOCHREALTIME (microseconds, no fork), or
#     `date +%s%N` on shells without it (that adds a fork to every reading);
#   * the figure kept is the median.
# Output: a table of median / min / max in ms, the median net of /bin/true's
# (the program's own cost) and the ratio of medians to luajit's, then
# one `startup.<name><TAB>median-ms<TAB>net-ms` line per contender for run.sh.
# With hyperfine installed and HYPERFINE=1, its own summary follows, for
# reference only: the recorded numbers are this script's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
runs=${2:-20}
target_ms=10

if [ ! -x "$bin" ]; then
  echo "startup.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi

# name|command: the contenders, in the order they are printed.
contenders=("spritescript|$(printf '%q' "$bin") -e ''")
for tool in luajit lua5.1 node; do
  if command -v "$tool" >/dev/null 2>&1; then
    contenders+=("$tool|$tool -e ''")
  else
    echo "startup.sh: $tool not installed, skipped" >&2
  fi
done
contenders+=("/bin/true|/bin/true")

# clock: set $now to microseconds since the epoch, without a subshell.
if [ -n "${EPOCHREALTIME:-}" ]; then
  clock() { now=${EPOCHREALTIME//[!0-9]/}; }
  # shellcheck disable=SC2016  # the name, printed as is
  clock_name='$EPOCHREALTIME'
else
  clock() { now=$(( $(date +%s%N) / 1000 )); }
  clock_name='date +%s%N'
fi

# Run one contender's command once; fail loudly if it does not work at all.
run_once() { eval "$1" >/dev/null 2>&1 </dev/null; }

declare -A samples=()
for c in "${contenders[@]}"; do
  name=${c%%|*}
  cmd=${c#*|}
  if ! run_once "$cmd"; then
    echo "startup.sh: '$cmd' fails; check the binary" >&2
    exit 1
  fi
  for _ in 1 2 3; do run_once "$cmd"; done
  samples[$name]=""
done

for (( i = 0; i < runs; i++ )); do
  for c in "${contenders[@]}"; do
    name=${c%%|*}
    cmd=${c#*|}
    clock; t0=$now
    run_once "$cmd"
    clock
    samples[$name]+="$(( now - t0 )) "
  done
done

# median/min/max of a list of microsecond samples, in microseconds.
stats() {
  tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '
    { v[NR] = $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%d %d %d\n", m, v[1], v[NR]
    }'
}

declare -A median=()
for c in "${contenders[@]}"; do
  name=${c%%|*}
  read -r med _ _ < <(stats "${samples[$name]}")
  median[$name]=$med
done
base=${median[luajit]:-}
floor=${median[/bin/true]}

ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }
echo "startup: \`X -e ''\`, median of $runs runs (clock: $clock_name)"
printf '  %-13s %9s %8s %8s %8s %9s\n' contender "median ms" "min" "max" "net ms" "x luajit"
for c in "${contenders[@]}"; do
  name=${c%%|*}
  read -r med lo hi < <(stats "${samples[$name]}")
  ratio="-"
  [ -n "$base" ] && ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.1f", a / b }')
  printf '  %-13s %9s %8s %8s %8s %9s\n' "$name" "$(ms "$med")" "$(ms "$lo")" "$(ms "$hi")" \
    "$(ms $(( med - floor )))" "$ratio"
done
echo "  (net: minus /bin/true's median, i.e. without the cost of creating a process)"
met=$(awk -v x="${median[spritescript]}" -v t="$target_ms" 'BEGIN { print (x / 1000 < t) ? "met" : "NOT met" }')
echo "  target: spritescript under $target_ms ms: $met"

# Machine-readable lines for bench/run.sh.
for c in "${contenders[@]}"; do
  name=${c%%|*}
  printf 'startup.%s\t%s\t%s\n' "${name##*/}" "$(ms "${median[$name]}")" "$(ms $(( median[$name] - floor )))"
done

if [ "${HYPERFINE:-0}" = 1 ] && command -v hyperfine >/dev/null 2>&1; then
  echo
  echo "hyperfine (reference only):"
  args=()
  for c in "${contenders[@]}"; do args+=("${c#*|}"); done
  hyperfine -N --warmup 3 --runs "$runs" --style basic "${args[@]}" 2>&1 | sed 's/^/  /'
fi
