-- bench/scheduler.lua: throughput and memory of the sprites task scheduler
-- (lua/stdlib/sprites/task.lua), next to bare LuaJIT coroutines (the floor).
--
--   spritescript bench/scheduler.lua [scale] [section ...]
--
-- scale (default 1) multiplies every count: 0.1 for a quick smoke run.
-- Sections (default: all of them, in this order):
--
--   spawn       tasks/s: spawn a task whose function returns at once, and
--               let it finish; 1,000,000 tasks
--   switch      sprites.sleep(0) switches/s with 2 and with 100 tasks taking
--               turns; 1,000,000 switches in all; target >= 1 M/s
--   idle.event  bytes per task while 100,000 tasks all wait on one shared
--               sprites.event(); target <= 2 KB/task
--   idle.timer  the same, each task in sprites.sleep(60) on its own timer
--   extra       where the time and bytes go (see bench/README.md)
--
-- Every section also runs the same shape with bare coroutines and prints
-- "x raw", how many times the scheduler's cost is the floor's.
--
-- Memory is the growth of the Lua heap (collectgarbage "count") and of the
-- resident set (core.rss()) while the tasks wait, divided by the task count.
-- The heap figure is exact wherever it is measured; the RSS figure is only
-- meaningful in a fresh process (LuaJIT's allocator reuses memory freed by
-- earlier sections without growing RSS), so bench/run.sh runs each idle
-- section in a process of its own.
--
-- Output: one line per measurement, `key<TAB>value<TAB>unit<TAB>note`, for
-- bench/run.sh to tabulate. Nothing here asserts on timings: a target that
-- is missed is reported ("NOT met"), not failed.
local core = require "spritescript.core"
local now, rss = core.now, core.rss
local spawn, sleep = sprites.spawn, sprites.sleep

local scale = tonumber(arg[1]) or 1
local N_SPAWN = math.floor(1000000 * scale)
local N_SWITCH = math.floor(1000000 * scale)
local N_IDLE = math.floor(100000 * scale)
local REPS = 3           -- throughput: best of REPS runs
local TARGET_SWITCH = 1e6
local TARGET_IDLE = 2048

local sections = {}
for i = 2, #arg do sections[arg[i]] = true end
local all = next(sections) == nil
local function wanted(name) return all or sections[name] end

---------------------------------------------------------------------------
-- Bare coroutines. The host replaces coroutine.resume/yield with wrappers
-- that pass scheduler waits through (task.lua, "The coroutine library");
-- the floor needs LuaJIT's own functions, which the wrappers hold as
-- upvalues named co_resume and co_yield.
---------------------------------------------------------------------------
local function upvalue(fn, name)
  for i = 1, 255 do
    local n, v = debug.getupvalue(fn, i)
    if n == nil then return nil end
    if n == name then return v end
  end
end
local raw_create = coroutine.create
local raw_resume = upvalue(coroutine.resume, "co_resume")
local raw_yield = upvalue(coroutine.yield, "co_yield")
local raw_note = "bare coroutines"
if not (raw_resume and raw_yield) then  -- the wrappers changed: use them
  raw_resume, raw_yield = coroutine.resume, coroutine.yield
  raw_note = "host-wrapped coroutine.resume/yield (bare ones not found)"
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------
local function report(key, value, unit, note)
  io.write(("%s\t%s\t%s\t%s\n"):format(key, value, unit, note or ""))
  io.flush()
end

-- 3 significant digits, at most 2 decimals.
local function fmt(x)
  if x >= 100 then return ("%.0f"):format(x) end
  if x >= 10 then return ("%.1f"):format(x) end
  return ("%.2f"):format(x)
end

local function verdict(ok) return ok and "met" or "NOT met" end

local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")  -- the second cycle frees what finalisers let go
end

-- Lua heap bytes and resident bytes, after a full GC.
local function memory()
  full_gc()
  return collectgarbage("count") * 1024, rss()
end

-- Best of REPS runs of fn() in seconds: the run least disturbed by the rest
-- of the machine. Every run starts after a full GC and pays for the garbage
-- it makes (the collector runs as it normally would).
local function best_time(fn)
  local best = math.huge
  for _ = 1, REPS do
    full_gc()
    local t0 = now()
    fn()
    local dt = now() - t0
    if dt < best then best = dt end
  end
  return best
end

local function noop() end

---------------------------------------------------------------------------
-- spawn: tasks that return at once
---------------------------------------------------------------------------
-- spawn() runs the child at once until its first wait; a child that never
-- waits has finished when spawn() returns. Nothing keeps the handles.
local function spawn_tasks(n)
  for _ = 1, n do spawn(noop) end
end

local function raw_spawns(n)
  for _ = 1, n do raw_resume(raw_create(noop)) end
end

if wanted("spawn") then
  local raw = N_SPAWN / best_time(function() raw_spawns(N_SPAWN) end)
  local rate = N_SPAWN / best_time(function() spawn_tasks(N_SPAWN) end)
  report("spawn.raw", fmt(raw / 1e6), "M/s", raw_note .. ": create + resume to the end")
  report("spawn", fmt(rate / 1e6), "M/s",
         ("%d tasks spawned and finished; x raw %.1f"):format(N_SPAWN, raw / rate))
end

---------------------------------------------------------------------------
-- switch: sprites.sleep(0)
---------------------------------------------------------------------------
-- k tasks each call sleep(0) n/k times. sleep(0) puts the task at the back
-- of the ready queue and the loop resumes the next ready task, so every
-- sleep(0) is one switch. The time includes spawning the k tasks.
local function switch_tasks(k, n)
  local per = math.floor(n / k)
  local function worker()
    for _ = 1, per do sleep(0) end
  end
  local tasks = {}
  for i = 1, k do tasks[i] = spawn(worker) end
  sprites.wait_all(tasks)
  return per * k
end

-- The floor: one resume + one yield of a bare coroutine per switch.
local function raw_switches(n)
  local co = raw_create(function()
    for _ = 1, n do raw_yield() end
  end)
  for _ = 1, n + 1 do raw_resume(co) end
end

if wanted("switch") then
  local raw = N_SWITCH / best_time(function() raw_switches(N_SWITCH) end)
  report("switch.raw", fmt(raw / 1e6), "M/s", raw_note .. ": resume + yield")
  for _, k in ipairs({ 2, 100 }) do
    local n = 0
    local rate = 1 / best_time(function() n = switch_tasks(k, N_SWITCH) end)
    rate = rate * n
    report(("switch.%d"):format(k), fmt(rate / 1e6), "M/s",
           ("%d tasks, %d switches; x raw %.1f; target >= 1 M/s: %s")
             :format(k, n, raw / rate, verdict(rate >= TARGET_SWITCH)))
  end
end

---------------------------------------------------------------------------
-- idle.*: memory per waiting task
---------------------------------------------------------------------------
-- A group task spawns n children that all wait, then returns; it stays
-- alive (a task waits for its children) until they have all ended.
-- park(n, body, release) -> heap B/task, RSS B/task, release seconds,
-- heap B/task still held after the release.
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
  local h2 = memory()
  return (h1 - h0) / n, (r1 - r0) / n, dt, (h2 - h0) / n
end

-- The floor: n bare coroutines parked at a yield one pcall deep.
local function raw_park(n)
  local h0 = memory()
  local parked = {}
  local function body() raw_yield() end
  local function main() pcall(body) end
  for i = 1, n do
    local co = raw_create(main)
    raw_resume(co)
    parked[i] = co
  end
  local h1 = memory()
  parked = nil
  return (h1 - h0) / n
end

local function idle_section(name, what, body, release)
  -- The scheduler first, while RSS still reflects only this section.
  local heap, res, dt, left = park(N_IDLE, body, release)
  local raw = raw_park(N_IDLE)
  report(("idle.%s.heap"):format(name), fmt(heap), "B/task",
         ("%d tasks %s; x raw %.1f; target <= 2 KB: %s")
           :format(N_IDLE, what, heap / raw, verdict(heap <= TARGET_IDLE)))
  report(("idle.%s.rss"):format(name), fmt(res), "B/task",
         ("target <= 2 KB: %s"):format(verdict(res <= TARGET_IDLE)))
  report(("idle.%s.release"):format(name), fmt(dt * 1e3), "ms",
         ("wake/cancel all and wait for them; heap still held after: %.0f B/task"):format(left))
  report("idle.raw.heap", fmt(raw), "B/task", raw_note .. " parked at a yield")
end

if wanted("idle.event") then
  local ev = sprites.event()
  idle_section("event", "waiting on one sprites.event()",
               function() ev:wait() end,
               function() ev:set() end)
end

if wanted("idle.timer") then
  idle_section("timer", "in sprites.sleep(60)",
               function() sleep(60) end,
               function(group) group:cancel("benchmark done") end)
end

---------------------------------------------------------------------------
-- extra: where the time and the bytes go (evidence for tuning task.lua)
---------------------------------------------------------------------------
-- A bare coroutine parked `depth` calls deep: bytes each. LuaJIT starts a
-- coroutine with a small stack and doubles it when a call needs more.
local function raw_park_at(n, depth)
  local function nest(d)
    if d == 0 then return raw_yield() end
    return (nest(d - 1))
  end
  local function main(...) return pcall(nest, ...) end
  local h0 = memory()
  local parked = {}
  for i = 1, n do
    local co = raw_create(main)
    raw_resume(co, depth)
    parked[i] = co
  end
  local h1 = memory()
  parked = nil
  return (h1 - h0) / n
end

if wanted("extra") then
  local n = N_SPAWN
  local spawn_dt = best_time(function() spawn_tasks(n) end)

  -- The call-site string every spawn records (core.where(2)).
  local function site() return core.where(2) end
  local dt = best_time(function() for _ = 1, n do site() end end)
  report("extra.where", fmt(dt / n * 1e9), "ns/call",
         ("core.where(2), which every spawn calls: %.0f%% of a spawn (%.0f ns)")
           :format(dt / spawn_dt * 100, spawn_dt / n * 1e9))

  -- The garbage collector's share of a spawn: the same spawns in chunks
  -- with the collector stopped, each chunk's collection left out.
  local chunk = math.min(n, 10000)
  local chunks = math.floor(n / chunk)
  local nogc = math.huge
  for _ = 1, REPS do
    local sum = 0
    for _ = 1, chunks do
      full_gc()
      collectgarbage("stop")
      local t0 = now()
      spawn_tasks(chunk)
      sum = sum + (now() - t0)
      collectgarbage("restart")
    end
    nogc = math.min(nogc, sum / (chunks * chunk))
  end
  report("extra.gc", fmt((1 - nogc / (spawn_dt / n)) * 100), "%",
         ("of a spawn's time is collecting its garbage (%.0f ns/spawn without)"):format(nogc * 1e9))

  -- Finished tasks whose handles are kept (in a list for wait_all, say):
  -- what each one holds, next to a finished bare coroutine.
  local m = N_IDLE
  local h0 = memory()
  local held = {}
  for i = 1, m do held[i] = spawn(noop) end
  local h1 = memory()
  held = nil
  local h2 = memory()
  held = {}
  for i = 1, m do
    local co = raw_create(noop)
    raw_resume(co)
    held[i] = co
  end
  local h3 = memory()
  held = nil
  report("extra.held", fmt((h1 - h0) / m), "B/task",
         ("a finished task's handle, kept; a finished bare coroutine: %.0f B"):format((h3 - h2) / m))

  -- How deep a coroutine waits decides its stack: a task waiting in
  -- ev:wait() is ~6 calls deep (task_main, xpcall, body, wait, suspend).
  for _, depth in ipairs({ 1, 6 }) do
    report(("extra.stack.%d"):format(depth), fmt(raw_park_at(N_IDLE, depth)), "B/coroutine",
           ("bare coroutine parked %d call(s) deep"):format(depth))
  end
end
