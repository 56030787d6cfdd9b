#!/usr/bin/env bash
# bench/variants.sh: A/B experiments on the scheduler, without editing it.
#
#   bench/variants.sh [path-to-spritescript] [scale]     (ROUNDS=3 by default)
#
# Copies lua/stdlib to a temporary directory once per variant, edits the
# copy's sprites/task.lua, and runs bench/scheduler.lua against the copy via
# SPRITESCRIPT_STDLIB_DIR (the binary then reads its built-in modules from
# that directory). The real lua/ tree is never touched.
#
# Each variant changes one thing (mostly: removes one suspected cost), so
# its difference from `base` is what that thing costs. They are experiments, not proposed patches: some drop
# behaviour the real scheduler needs (noted per variant). A variant is an
# exact-text substitution in task.lua that must match exactly once, or Lua
# appended just before the file's final `return M`; when task.lua has
# changed so that it no longer applies, the variant is reported as n/a.
# (Substitutions, not reassigning task.lua's locals from appended code:
# assigning a local upvalue makes it mutable, which stops LuaJIT from
# constant-folding it in compiled code and would bias the comparison.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
scale=${2:-1}
sections=(spawn switch idle extra.held)   # what each variant runs

if [ ! -x "$bin" ]; then
  echo "variants.sh: no spritescript binary at $bin" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-variants.XXXXXX")
trap 'rm -rf "$work"' EXIT

names=(base no-isyieldable no-where presize join-no-value cancel-no-traceback keep-co keep-rv closure control)
declare -A about=(
  [base]="task.lua as it is"
  [no-isyieldable]="waits skip the coroutine.isyieldable() C call (loses the 'cannot wait here' error)"
  [no-where]="spawn records no call site (loses 'task spawned at' in errors)"
  [presize]="the task table is created with the fields a wake and an end add (no rehash later)"
  [join-no-value]="a join wakes its waiter without passing the finished task along"
  [cancel-no-traceback]="a cancelled task's copy of the reason gets no traceback (sprites/error.lua)"
  [keep-co]="undoes 384a078: a finished task keeps its (dead) coroutine"
  [keep-rv]="undoes 384a078: the task table keeps the value a task was woken with"
  [closure]="undoes 5b4c1c8: event:wait() makes a closure per wait again"
  [control]="task.lua as it is, again: the differences here are noise"
)
# Substitutions: search text -> replacement text (both exact), in
# sprites/task.lua unless file[] names another module of lua/stdlib.
declare -A search=() replace=() append=() file=()  # keyed by variant name
search[no-isyieldable]='  if not co_isyieldable() then error(cannot_wait_error(what), 0) end'
replace[no-isyieldable]='  -- (bench: no co_isyieldable() check)'
search[no-where]='new_task(fn, current, core.where(2))'
replace[no-where]='new_task(fn, current, "?")'
search[presize]='    state = "ready", nchildren = 0,'
replace[presize]='    state = "ready", nchildren = 0, ok = false, results = false, rv_ok = false, wait_kind = false, wait_obj = false,'
search[join-no-value]='    make_ready(w, true, t)'
replace[join-no-value]='    make_ready(w, true)'
file[cancel-no-traceback]=sprites/error.lua
search[cancel-no-traceback]='      copy.traceback = debug.traceback("", 2):gsub("^\n", "")'
replace[cancel-no-traceback]='      copy.traceback = ""'
# Reverse variants (keep-co, keep-rv, closure) put back what a later commit
# removed, so that their difference from base is what that commit saved; they
# replaced drop-co and no-closure, which task.lua now does itself.
search[keep-co]='  if t.state == "done" then t.co = nil end  -- a finished task keeps no stack'
replace[keep-co]='  -- (bench: a finished task keeps its coroutine)'
search[keep-rv]='        t.rv_ok, t.rv = nil, nil  -- do not keep what woke the task alive'
replace[keep-rv]='        -- (bench: t.rv_ok, t.rv kept)'
# Event.wait is a table field, so an appended override is as fast as an edit.
# This is Event:wait as it was at a94f8a0.
append[closure]='
assert(Event and waiting_task and check_cancel and suspend)
function Event:wait(timeout)
  if self.is_set then return end
  local me = waiting_task("event:wait")
  check_cancel(me)
  local rec = { task = me }
  self.waiters[#self.waiters + 1] = rec
  local function wait_event()
    local ok, value = suspend(me, "event", rec)
    if not ok then
      rec.done = true
      error(value, 0)
    end
  end
  if timeout then M.timeout(timeout, wait_event) else wait_event() end
end'

# make_variant NAME: prints the variant's stdlib directory (its path keeps
# the "/lua/stdlib/" part the runtime uses to recognise built-in code).
make_variant() {
  local dir=$work/$1/lua/stdlib
  local task_lua=$dir/sprites/task.lua
  mkdir -p "$dir"
  cp -R "$here/../lua/stdlib/." "$dir/"
  if [ -n "${search[$1]:-}" ]; then
    S=${search[$1]} R=${replace[$1]} perl -0777 -i -pe \
      '$n += s/\Q$ENV{S}\E/$ENV{R}/g; END { exit($n == 1 ? 0 : 3) }' \
      "$dir/${file[$1]:-sprites/task.lua}" || return 1
  fi
  if [ -n "${append[$1]:-}" ]; then
    local last
    last=$(grep -n '^return M[[:space:]]*$' "$task_lua" | tail -1 | cut -d: -f1)
    [ -n "$last" ] || return 1
    {
      head -n $((last - 1)) "$task_lua"
      printf -- '-- bench/variants.sh: %s\n%s\n' "$1" "${append[$1]}"
      tail -n +"$last" "$task_lua"
    } >"$task_lua.new"
    mv "$task_lua.new" "$task_lua"
  fi
  echo "$dir"
}

# Every variant runs ROUNDS times, the variants taking turns, and keeps its
# best figure per metric (highest rate, lowest time or bytes), so that a
# slow moment of the machine does not decide a comparison.
rounds=${ROUNDS:-3}
declare -A dirs=()
declare -A result=()   # "variant key" -> value
declare -A unit=()
keys=()
for v in "${names[@]}"; do
  if dirs[$v]=$(make_variant "$v"); then
    echo "variant $v: ${about[$v]}" >&2
  else
    echo "variant $v: does not apply to task.lua any more, skipped" >&2
    unset "dirs[$v]"
  fi
done
for (( round = 1; round <= rounds; round++ )); do
  for v in "${names[@]}"; do
    [ -n "${dirs[$v]:-}" ] || continue
    echo "round $round/$rounds: $v" >&2
    if ! out=$(SPRITESCRIPT_STDLIB_DIR=${dirs[$v]} "$bin" "$here/scheduler.lua" "$scale" "${sections[@]}" 2>&1); then
      echo "variant $v fails (task.lua changed?); dropped:" >&2
      echo "$out" | tail -3 | sed 's/^/    /' >&2
      unset "dirs[$v]"
      continue
    fi
    while IFS=$'\t' read -r key value u _; do
      case $key in info | end | *.raw | idle.raw.heap | idle.*.rss) continue ;; esac
      [ -n "${unit[$key]:-}" ] || keys+=("$key")
      unit[$key]=$u
      old=${result["$v $key"]:-}
      if [ -z "$old" ]; then
        result["$v $key"]=$value
      elif [ "$u" = M/s ]; then
        result["$v $key"]=$(awk -v a="$old" -v b="$value" 'BEGIN { print (b > a) ? b : a }')
      else
        result["$v $key"]=$(awk -v a="$old" -v b="$value" 'BEGIN { print (b < a) ? b : a }')
      fi
    done <<<"$out"
  done
done

echo "variants (scale $scale, best of $rounds rounds; each column changes one thing; % is the change from base):"
declare -A width=()
for v in "${names[@]}"; do width[$v]=$(( ${#v} > 12 ? ${#v} : 12 )); done
printf '  %-19s %-7s' metric unit
for v in "${names[@]}"; do printf " %${width[$v]}s" "$v"; done
echo
for key in "${keys[@]}"; do
  printf '  %-19s %-7s' "$key" "${unit[$key]}"
  b=${result["base $key"]:-}
  for v in "${names[@]}"; do
    x=${result["$v $key"]:-}
    if [ -z "$x" ]; then
      cell="n/a"
    elif [ "$v" = base ] || [ -z "$b" ]; then
      cell=$x
    else
      cell=$(awk -v x="$x" -v b="$b" 'BEGIN { printf "%s %+.0f%%", x, (b > 0 ? (x / b - 1) * 100 : 0) }')
    fi
    printf " %${width[$v]}s" "$cell"
  done
  echo
done
echo
for v in "${names[@]}"; do printf '  %-20s %s\n' "$v" "${about[$v]}"; done
