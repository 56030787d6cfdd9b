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
--   extra.where   the share of a spawn spent recording its call site
--   extra.profile where a spawn's and a switch's time goes: compiled code,
--                 interpreter, C, garbage collector (jit.profile samples)
--   extra.held    bytes a finished task holds while its handle is kept
--   extra.stack   bytes one C call at the bottom of a deep wait costs
--                 (the extra.* sections are evidence for tuning task.lua;
--                 bench/README.md explains them)
--
-- Every section also runs the same shape with bare coroutines and prints
-- "x raw", how many times the scheduler's cost is the floor's. The idle
-- sections also report how long releasing the tasks took (idle.*.release)
-- and how much heap was still in use once they had all ended (idle.*.after).
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

-- A section runs when it is named, when a prefix of it is ("idle" runs both
-- idle sections, "extra" every extra.*), or when none is named.
local sections = {}
for i = 2, #arg do sections[#sections + 1] = arg[i] end
local function wanted(name)
  if #sections == 0 then return true end
  for _, s in ipairs(sections) do
    if name == s or name:sub(1, #s + 1) == s .. "." then return true end
  end
  return false
end

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

local ok_ffi, ffi = pcall(require, "ffi")
report("info", jit and jit.version or _VERSION, "",
       ("JIT %s%s; scale %g"):format(jit and jit.status() and "on" or "off",
                                     ok_ffi and ffi.abi("gc64") and ", GC64" or "", scale))

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
  report(("idle.%s.release"):format(name), fmt(dt * 1e3), "ms", "to wake (or cancel) them all and see them end")
  report(("idle.%s.after"):format(name), fmt(left), "B/task",
         "heap still in use once they have ended (should be ~0)")
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
-- n bare coroutines parked 8 calls deep (about as deep as a task waiting
-- in ev:wait(): task_main, xpcall, body, wait, suspend), with or without a
-- C function called just before the yield -> heap bytes each. LuaJIT gives
-- a new coroutine a small stack (40 slots) and doubles it when a call needs
-- more; a C function needs 20 free slots (LUA_MINSTACK) on top of the
-- caller's, a yield does not.
local function raw_park_deep(n, c_call)
  local isyieldable = coroutine.isyieldable
  local function nest(d)
    if d == 0 then
      if c_call then isyieldable() end
      return raw_yield()
    end
    return (nest(d - 1))
  end
  local function main(...) return pcall(nest, ...) end
  local h0 = memory()
  local parked = {}
  for i = 1, n do
    local co = raw_create(main)
    raw_resume(co, 8)
    parked[i] = co
  end
  local h1 = memory()
  parked = nil
  return (h1 - h0) / n
end

-- A spawn's time, for the shares below (computed once).
local spawn_ns
local function spawn_time()
  if not spawn_ns then
    spawn_ns = best_time(function() spawn_tasks(N_SPAWN) end) / N_SPAWN * 1e9
  end
  return spawn_ns
end

if wanted("extra.where") then
  -- The call-site string every spawn records (core.where(2)).
  local n = N_SPAWN
  local function site() return core.where(2) end
  local ns = best_time(function() for _ = 1, n do site() end end) / n * 1e9
  report("extra.where", fmt(ns), "ns/call",
         ("core.where(2), which every spawn calls: %.0f%% of a spawn (%.0f ns)")
           :format(ns / spawn_time() * 100, spawn_time()))
end

if wanted("extra.profile") then
  -- Where a spawn's and a switch's time goes, by LuaJIT VM state, from the
  -- built-in sampling profiler (jit.profile, 1 ms samples): compiled code,
  -- the interpreter (what the JIT did not compile), C functions, the
  -- garbage collector.
  local ok, profile = pcall(require, "jit.profile")
  local names = { N = "compiled", I = "interpreted", C = "C", G = "GC", J = "JIT compiler" }
  local function by_state(key, fn)
    if not ok then
      report(key, "-", "", "jit.profile not available")
      return
    end
    local counts, total = {}, 0
    full_gc()
    profile.start("i1", function(_, samples, state)
      counts[state] = (counts[state] or 0) + samples
      total = total + samples
    end)
    fn()
    profile.stop()
    local parts = {}
    for _, state in ipairs({ "I", "N", "C", "G", "J" }) do
      if counts[state] then
        parts[#parts + 1] = ("%s %.0f%%"):format(names[state], counts[state] / total * 100)
      end
    end
    report(key, fmt((counts.G or 0) / math.max(total, 1) * 100), "% GC", table.concat(parts, ", "))
  end
  by_state("extra.profile.spawn", function() spawn_tasks(N_SPAWN) end)
  by_state("extra.profile.switch", function() switch_tasks(100, N_SWITCH) end)
end

if wanted("extra.held") then
  -- Finished tasks whose handles are kept (in a list for wait_all, say):
  -- the bytes each one holds, next to a finished bare coroutine.
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
         ("a finished task whose handle is kept; a finished bare coroutine: %.0f B")
           :format((h3 - h2) / m))
end

if wanted("extra.stack") then
  -- What one C call at the bottom of a deep wait costs (task.lua's
  -- waiting_task() calls coroutine.isyieldable(), a C function, there).
  local plain, with_c = raw_park_deep(N_IDLE, false), raw_park_deep(N_IDLE, true)
  report("extra.stack", fmt(with_c - plain), "B/coroutine",
         ("bare coroutine parked 8 calls deep: %.0f B; after a C call there: %.0f B")
           :format(plain, with_c))
end

-- Every task has ended and nothing is left in the loop: the script ends.
full_gc()
local stats = require("sprites.task").stats()
report("end", stats.pending_ops, "pending ops",
       ("ready %d, roots %d, tasks spawned %d; heap %.1f MB, RSS %.1f MB")
         :format(stats.ready, stats.roots, stats.spawned, collectgarbage("count") / 1024, rss() / 2 ^ 20))
