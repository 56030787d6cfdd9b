-- bench/scheduler.lua: throughput and memory of the sprites task scheduler
-- (lua/stdlib/sprites/task.lua), next to plain LuaJIT coroutines as a floor.
--
--   spritescript bench/scheduler.lua [scale]
--
-- scale (default 1) multiplies every task/switch count: 0.1 for a quick
-- smoke run. The numbers mean (bench/README.md has the long version):
--
--   spawn       tasks/s to spawn a task whose function returns at once and
--               let it finish (1,000,000 tasks)
--   switch      sprites.sleep(0) switches/s, 2 and 100 tasks taking turns
--               (1,000,000 switches in all); target >= 1 M/s
--   idle        bytes per task while 100,000 tasks all wait: on one shared
--               sprites.event(), and each on its own timer (sleep(60));
--               Lua heap (collectgarbage "count") and RSS (core.rss());
--               target <= 2 KB/task
--   raw         the same shapes with bare coroutines (no scheduler): the
--               floor; "x raw" is how many times slower the scheduler is
--
-- Output: one line per measurement, `key<TAB>value<TAB>unit<TAB>note`, so
-- bench/run.sh can tabulate it; nothing here asserts on timings.
local core = require "spritescript.core"
local now, rss = core.now, core.rss

local scale = tonumber(arg and arg[1]) or 1
local N_SPAWN = math.floor(1000000 * scale)
local N_SWITCH = math.floor(1000000 * scale)
local N_IDLE = math.floor(100000 * scale)

---------------------------------------------------------------------------
-- Bare coroutines. The host replaces coroutine.resume/yield with wrappers
-- that forward scheduler waits (task.lua, "The coroutine library"); the raw
-- floor needs LuaJIT's own functions, which the wrappers keep as upvalues.
---------------------------------------------------------------------------
local function upvalue(fn, name)
  for i = 1, 60 do
    local n, v = debug.getupvalue(fn, i)
    if n == nil then return nil end
    if n == name then return v end
  end
end
local raw_resume = upvalue(coroutine.resume, "co_resume") or coroutine.resume
local raw_yield = upvalue(coroutine.yield, "co_yield") or coroutine.yield
local raw_create = coroutine.create
local raw_found = raw_resume ~= coroutine.resume and raw_yield ~= coroutine.yield

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------
local function report(key, value, unit, note)
  io.write(("%s\t%s\t%s\t%s\n"):format(key, value, unit, note or ""))
  io.flush()
end

local function fmt(x)
  if x >= 100 then return ("%.0f"):format(x) end
  if x >= 10 then return ("%.1f"):format(x) end
  return ("%.2f"):format(x)
end

local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")  -- a second cycle runs finalisers' leftovers
end

-- Lua heap in bytes, and resident set size in bytes, after a full GC.
local function memory()
  full_gc()
  return collectgarbage("count") * 1024, rss()
end

-- Best of `reps` runs of fn() -> seconds. Each run does the same work; the
-- best run is the one least disturbed by the rest of the machine.
local function best_time(reps, fn)
  local best = math.huge
  for _ = 1, reps do
    full_gc()
    local t0 = now()
    fn()
    local dt = now() - t0
    if dt < best then best = dt end
  end
  return best
end

local REPS = 3
local function noop() end

---------------------------------------------------------------------------
-- Raw floor: bare coroutines
---------------------------------------------------------------------------
-- One coroutine yielding n times: n resume/yield round trips.
local function raw_switches(n)
  local co = raw_create(function()
    for _ = 1, n do raw_yield() end
  end)
  for _ = 1, n + 1 do raw_resume(co) end
end

-- n coroutines created and run to their end.
local function raw_spawns(n)
  for _ = 1, n do raw_resume(raw_create(noop)) end
end

local raw_switch_rate = N_SWITCH / best_time(REPS, function() raw_switches(N_SWITCH) end)
local raw_spawn_rate = N_SPAWN / best_time(REPS, function() raw_spawns(N_SPAWN) end)
report("raw.switch", fmt(raw_switch_rate / 1e6), "M/s",
       raw_found and "bare coroutine resume+yield" or "host-wrapped coroutine.resume (raw not found)")
report("raw.spawn", fmt(raw_spawn_rate / 1e6), "M/s", "coroutine.create + resume to the end")

-- n bare coroutines parked at a yield (inside a pcall, one call deep, like
-- a task body): bytes each, heap and RSS. Kept in `parked` until measured.
local function raw_idle(n)
  local h0, r0 = memory()
  local parked = {}
  local function body() raw_yield() end
  for i = 1, n do
    local co = raw_create(function() pcall(body) end)
    raw_resume(co)
    parked[i] = co
  end
  local h1, r1 = memory()
  parked = nil
  full_gc()
  return (h1 - h0) / n, (r1 - r0) / n
end

do
  local heap, res = raw_idle(N_IDLE)
  report("raw.idle.heap", fmt(heap), "B/task", "bare coroutine parked at a yield")
  report("raw.idle.rss", fmt(res), "B/task", "")
end

---------------------------------------------------------------------------
-- The scheduler
---------------------------------------------------------------------------
local spawn, sleep = sprites.spawn, sprites.sleep

-- (a) spawn-and-finish: every child returns at once, so spawn() runs it to
-- its end before it returns. The children are not kept.
local function spawns(n)
  for _ = 1, n do spawn(noop) end
end

local spawn_rate = N_SPAWN / best_time(REPS, function() spawns(N_SPAWN) end)
report("spawn", fmt(spawn_rate / 1e6), "M/s",
       ("%d tasks; x raw %.1f"):format(N_SPAWN, raw_spawn_rate / spawn_rate))

-- (b) sleep(0) switches: k tasks each calling sleep(0) n/k times; every
-- sleep(0) puts the task at the back of the ready queue and the scheduler
-- resumes the next one, so one sleep(0) is one task switch.
local function switches(k, n)
  local per = math.floor(n / k)
  local function worker()
    for _ = 1, per do sleep(0) end
  end
  local tasks = {}
  for i = 1, k do tasks[i] = spawn(worker) end
  sprites.wait_all(tasks)
  return per * k
end

for _, k in ipairs({ 2, 100 }) do
  local done = 0
  local dt = best_time(REPS, function() done = switches(k, N_SWITCH) end)
  local rate = done / dt
  report(("switch.%d"):format(k), fmt(rate / 1e6), "M/s",
         ("%d tasks, %d switches; x raw %.1f; target >= 1 M/s: %s")
           :format(k, done, raw_switch_rate / rate, rate >= 1e6 and "met" or "NOT met"))
end

-- (c) memory per idle task. A group task spawns n children that all wait,
-- then returns; it stays alive (waiting for its children) until they end.
-- park(n, body) -> heap bytes/task, RSS bytes/task, release seconds.
local function park(n, body, release)
  local h0, r0 = memory()
  local group = spawn(function()
    for _ = 1, n do spawn(body) end
  end)
  local h1, r1 = memory()
  local t0 = now()
  release(group)
  local ok, err = group:pwait()
  if not ok and not sprites.error.is(err, "cancelled") then error(err, 0) end
  local dt = now() - t0
  group = nil
  full_gc()
  return (h1 - h0) / n, (r1 - r0) / n, dt
end

local function idle_report(name, heap, res, dt, what)
  local target = math.max(heap, res) <= 2048 and "met" or "NOT met"
  report(("idle.%s.heap"):format(name), fmt(heap), "B/task", what)
  report(("idle.%s.rss"):format(name), fmt(res), "B/task",
         ("target <= 2 KB: %s; release %.0f ms"):format(target, dt * 1e3))
end

do  -- every task waits on one shared event; set() wakes them all
  local ev = sprites.event()
  local heap, res, dt = park(N_IDLE, function() ev:wait() end, function() ev:set() end)
  idle_report("event", heap, res, dt, ("%d tasks waiting on one sprites.event()"):format(N_IDLE))
end

do  -- every task sleeps on its own Asio timer; cancelling the group ends them
  local heap, res, dt = park(N_IDLE, function() sleep(60) end,
                             function(group) group:cancel("benchmark done") end)
  idle_report("timer", heap, res, dt, ("%d tasks in sprites.sleep(60)"):format(N_IDLE))
end

local stats = sprites.current and require("sprites.task").stats()
report("end", stats and stats.pending_ops or 0, "pending ops",
       ("heap %.1f MB, RSS %.1f MB"):format(collectgarbage("count") / 1024, rss() / 2 ^ 20))
