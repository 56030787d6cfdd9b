#!/usr/bin/env bash
# bench/run.sh: every spritescript benchmark, one summary table.
#
#   bench/run.sh [path-to-spritescript]        (make bench runs this)
#
# Environment:
#   RUNS=5          processes for the throughput numbers (best one is kept)
#   STARTUP_RUNS=20 timed runs per contender in bench/startup.sh
#   SCALE=1         multiplies the scheduler's task/switch counts
#   VARIANTS=1      also run bench/variants.sh (A/B experiments, 2-3 min)
#   HYPERFINE=1     also print hyperfine's startup summary (reference only)
#
# What each number means: bench/README.md. Results of a real run, with the
# machine they came from: bench/RESULTS.md. Nothing here fails on a slow
# number: targets are reported as met / NOT met. The exit status is non-zero
# only when a benchmark could not run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
runs=${RUNS:-5}
startup_runs=${STARTUP_RUNS:-20}
scale=${SCALE:-1}

if [ ! -x "$bin" ]; then
  echo "run.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT

# scheduler SECTION...: one fresh process of bench/scheduler.lua; its lines
# go to $out/results.tsv, prefixed with a process number.
proc=0
scheduler() {
  proc=$((proc + 1))
  if ! "$bin" "$here/scheduler.lua" "$scale" "$@" >"$out/proc.$proc" 2>"$out/err.$proc"; then
    echo "run.sh: scheduler.lua $* failed:" >&2
    cat "$out/err.$proc" >&2
    exit 1
  fi
  sed "s/^/$proc\t/" "$out/proc.$proc" >>"$out/results.tsv"
}

# ---- the machine --------------------------------------------------------
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
# shellcheck disable=SC1091  # the running system's file
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
compiler=$(readelf -p .comment "$bin" 2>/dev/null | grep -o 'GCC: .*\|clang version [0-9.]*' | head -1)
echo "spritescript benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  binary:  $bin: $("$bin" version)"
echo "  machine: $(nproc) CPUs, ${cpu:-unknown CPU}, ${mem:-? GiB}; ${os:-unknown OS}, Linux $(uname -r)"
echo "  built:   ${compiler:-compiler unknown}"
echo "  load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the start"
echo

# ---- startup --------------------------------------------------------------
echo "running: startup ($startup_runs runs per contender)" >&2
"$here/startup.sh" "$bin" "$startup_runs" >"$out/startup.txt"
grep -v '^startup\.' "$out/startup.txt"
echo

# ---- scheduler -----------------------------------------------------------
# Throughput varies from one process to the next on some machines (see
# README.md, "Noise"): run it in $runs processes and keep the best.
: >"$out/results.tsv"
for (( i = 1; i <= runs; i++ )); do
  echo "running: scheduler throughput, process $i/$runs" >&2
  scheduler spawn switch
done
# Memory: each shape in a fresh process, so RSS growth is its own.
echo "running: scheduler memory" >&2
scheduler idle.event
scheduler idle.timer
echo "running: scheduler extra" >&2
scheduler extra

# ---- summary -------------------------------------------------------------
echo "summary"
awk -F'\t' -v runs="$runs" -v startup="$out/startup.txt" '
  # $1 process, $2 key, $3 value, $4 unit, $5 note
  function ratio_of(note,   m) {
    if (match(note, /x raw [0-9.]+/)) return substr(note, RSTART + 6, RLENGTH - 6) "x raw"
    return ""
  }
  function target_of(note,   m) {
    if (match(note, /target [^;]*/)) return substr(note, RSTART + 7, RLENGTH - 7)
    return ""
  }
  function row(metric, value, spread, vs, target) {
    printf "  %-32s %-11s %-11s %-13s %s\n", metric, value, spread, vs, target
  }
  $2 == "end" { ends++; if ($3 == "0") clean++; last_end = $5; next }
  $2 == "info" { info = $3 ", " $5; next }
  {
    key = $2
    if (!(key in best) || ($4 == "M/s" && $3 + 0 > best[key] + 0)) {
      best[key] = $3; unit[key] = $4; note[key] = $5
    }
    if (!(key in lo) || $3 + 0 < lo[key] + 0) lo[key] = $3
    if (!(key in hi) || $3 + 0 > hi[key] + 0) hi[key] = $3
    count[key]++
  }
  END {
    while ((getline line < startup) > 0) {
      split(line, f, "\t")
      if (f[1] ~ /^startup\./) { name = substr(f[1], 9); ms[name] = f[2]; net[name] = f[3]; order[++n] = name }
    }
    row("metric", "result", "spread", "vs floor", "target")
    for (i = 1; i <= n; i++) {
      name = order[i]
      vs = ("luajit" in ms) ? sprintf("%.1fx luajit", ms[name] / ms["luajit"]) : ""
      tgt = ""
      if (name == "spritescript") tgt = "< 10 ms: " ((ms[name] < 10) ? "met" : "NOT met")
      row("startup: " (name == "true" ? "/bin/true" : name " -e \047\047"), ms[name] " ms",
          (name == "true") ? "" : "net " net[name], vs, tgt)
    }
    split("spawn|spawn + finish (tasks/s);switch.2|sleep(0), 2 tasks (sw/s);switch.100|sleep(0), 100 tasks (sw/s)", t, ";")
    for (i = 1; i in t; i++) {
      split(t[i], kv, "|"); k = kv[1]
      if (!(k in best)) continue
      spread = (count[k] > 1) ? lo[k] "-" hi[k] : ""
      row(kv[2], best[k] " M/s", spread, ratio_of(note[k]), target_of(note[k]))
    }
    split("event|event:wait();timer|sleep(60)", s, ";")
    for (i = 1; i in s; i++) {
      split(s[i], kv, "|"); k = "idle." kv[1]
      if (!((k ".heap") in best)) continue
      row("idle in " kv[2] ": heap/task", best[k ".heap"] " B", "", ratio_of(note[k ".heap"]), target_of(note[k ".heap"]))
      row("idle in " kv[2] ": RSS/task", best[k ".rss"] " B", "", "", target_of(note[k ".rss"]))
      row("  release them all", best[k ".release"] " ms", "", "", "")
      row("  heap left after, per task", best[k ".after"] " B", "", "", "")
    }
    print "  (startup: median; net: minus /bin/true, the cost of creating a process from bash)"
    print "  (throughput: best of " runs " processes, each the best of 3 runs; spread: worst-best process)"
    print "  (scheduler: " info ")"
    print ""
    print "evidence (bench/README.md, \"Reading the extra numbers\"):"
    for (k in best) if (k ~ /^extra\./) ex[k] = 1
    m = asorti_(ex, keys)
    for (i = 1; i <= m; i++) {
      k = keys[i]
      printf "  %-22s %8s %-11s %s\n", k, best[k], unit[k], note[k]
    }
    printf "\nscheduler.lua ended normally in %d of %d processes with nothing left in the loop", clean, ends
    printf " (last: %s)\n", last_end
  }
  # Portable sort of an array of keys (no gawk asorti): insertion sort.
  function asorti_(src, dst,   k, n, i, j, tmp) {
    n = 0
    for (k in src) dst[++n] = k
    for (i = 2; i <= n; i++) {
      tmp = dst[i]
      for (j = i - 1; j >= 1 && dst[j] > tmp; j--) dst[j + 1] = dst[j]
      dst[j + 1] = tmp
    }
    return n
  }
' "$out/results.tsv"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${VARIANTS:-0}" = 1 ]; then
  echo
  echo "running: variants" >&2
  "$here/variants.sh" "$bin" "$scale" 2>/dev/null
fi
