-- sprites.task: tasks on one event loop, with structured concurrency.
--
-- How waiting works (docs/architecture.md, "The scheduler"): every task is a
-- Lua coroutine. A call that waits registers what it waits for and yields
-- the private AWAIT marker up to the scheduler loop below; the loop runs
-- ready tasks and, when none is ready, blocks in core.poll() until an Asio
-- operation finishes. C++ never resumes Lua and never yields: bindings return
-- ops, and the one place that suspends a task is suspend() in this file.
--
-- Semantics, in brief (docs/tasks.md has the full contract):
--   * spawn runs the child at once until its first wait; the child belongs
--     to the spawning task, which does not finish before its children do.
--   * A child's error that nobody is waiting for is raised in its parent at
--     the parent's next wait (once); if the parent does not handle it, the
--     parent fails and its other children are cancelled.
--   * Cancellation (task:cancel, sprites.timeout, Ctrl-C) raises an error at
--     the place the task waits, and at every later wait, until the task
--     ends; sprites.shield(fn) lets cleanup that must wait run to the end.
local core = require "spritescript.core"
local errors = require "sprites.error"

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_running, co_isyieldable = coroutine.running, coroutine.isyieldable
local unpack, select, setmetatable, type = unpack, select, setmetatable, type
local table_new = require "table.new"

local M = {}

local function pack(...) return { n = select("#", ...), ... } end

-- The value a waiting task yields to the scheduler. Private: user code
-- cannot forge it.
local AWAIT = setmetatable({}, { __tostring = function() return "<sprites wait>" end })

---------------------------------------------------------------------------
-- Scheduler state
---------------------------------------------------------------------------
local current = nil            -- the task whose coroutine is running
local ready, head, tail = {}, 1, 0
local op_waiters = {}          -- op id -> waiting task, or a timeout scope
local pending_ops = 0          -- how many entries op_waiters holds
local roots = {}               -- running tasks without a parent (main, detached)
local unobserved = {}          -- failed tasks whose error nobody saw
local next_id = 0
local poll_ids = {}

local Task = {}
Task.__index = Task
M.Task = Task

local function make_ready(t, ok, value)
  t.state = "ready"
  t.rv_ok, t.rv = ok, value
  tail = tail + 1
  ready[tail] = t
end

-- Append value to the list in t[key], creating it on first use.
local function push(t, key, value)
  local list = t[key]
  if not list then
    list = {}
    t[key] = list
  end
  list[#list + 1] = value
end

---------------------------------------------------------------------------
-- Cancellation scopes
---------------------------------------------------------------------------
-- t.scope is the innermost of a chain of {up, reason, shield} records made
-- by sprites.timeout and sprites.shield; t.cancel_reason is the task's own.
local function cancellation(t)
  local s = t.scope
  while s do
    if s.reason then return s.reason end
    if s.shield then return nil end
    s = s.up
  end
  return t.cancel_reason
end

-- Stop waiting: undo whatever suspend() registered.
local function detach_wait(t)
  local kind, obj = t.wait_kind, t.wait_obj
  if kind == "op" then
    local id = obj:id()
    if op_waiters[id] == t then
      op_waiters[id] = nil
      pending_ops = pending_ops - 1
    end
    obj:cancel()
  elseif kind == "join" or kind == "event" then
    obj.done = true  -- lazily dropped by whoever would have woken us
  end
  t.wait_kind, t.wait_obj = nil, nil
end

-- If a cancellation applies to waiting task t, wake it with the reason.
local function try_interrupt(t)
  if t.state ~= "waiting" or t.wait_kind == "children" then return end
  local reason = cancellation(t)
  if reason then
    detach_wait(t)
    make_ready(t, false, reason)
  end
end

local function cancel(t, reason)
  if t.state == "done" then return end
  if not t.cancel_reason then t.cancel_reason = reason end
  if t.children then
    for child in pairs(t.children) do cancel(child, reason) end
  end
  try_interrupt(t)
end

-- Cancel the children of t spawned inside scope s (or inside a scope nested
-- in it): their work belongs to the block that timed out.
local function cancel_children_of_scope(t, s, reason)
  if not t.children then return end
  for child in pairs(t.children) do
    local cs = child.spawn_scope
    while cs and cs ~= s do cs = cs.up end
    if cs == s then cancel(child, reason) end
  end
end

local function take_child_error(t)
  local q = t.child_errors
  if not q then return nil end
  local e = table.remove(q, 1)
  if #q == 0 then t.child_errors = nil end
  return e
end

---------------------------------------------------------------------------
-- Suspending
---------------------------------------------------------------------------
-- C functions that call back into Lua, by the name users know them by.
local c_callers = {
  [table.sort] = "a table.sort comparator", [string.gsub] = "a string.gsub callback",
  [load] = "a load reader", [collectgarbage] = "a __gc finaliser (run by collectgarbage)",
}

local function where_we_cannot_wait()
  -- The first C function below the waiting call is what Lua cannot yield
  -- across: name it when we know it.
  for level = 3, 60 do
    local info = debug.getinfo(level, "nSf")
    if not info then break end
    if info.name == "__gc" then return "inside a __gc finaliser" end
    if info.what == "C" and info.func ~= pcall and info.func ~= xpcall then
      local known = c_callers[info.func]
      if known then return "inside " .. known end
      if info.name then return ("inside a callback of '%s' (a C function)"):format(info.name) end
      return "inside a callback of a C function"
    end
  end
  return "here (a __gc finaliser, an FFI callback, or another callback from C)"
end

local function cannot_wait_error(what)
  return errors.new("usage", ("%s: cannot wait %s; Lua cannot yield across a C call, so move the waiting call out of it")
    :format(what, where_we_cannot_wait()))
end

-- The running task, checking that this is a place where it can wait.
local function waiting_task(what)
  local t = current
  if not t then
    errors.raise("usage", what .. ": not inside a task (scripts, -e code and REPL lines run as tasks)", nil, 3)
  end
  if not co_isyieldable() then error(cannot_wait_error(what), 0) end
  return t
end

-- Raise a pending cancellation or child error instead of waiting.
local function check_cancel(t)
  local reason = cancellation(t)
  if reason then error(reason, 0) end
  if t.child_errors then error(take_child_error(t), 0) end
end

local function suspend(t, kind, obj)
  t.state = "waiting"
  t.wait_kind, t.wait_obj = kind, obj
  local ok, value = co_yield(AWAIT)
  t.wait_kind, t.wait_obj = nil, nil
  return ok, value
end

-- M.await(op, id) -> op's results. Waits for a C++ operation (bindings
-- return one op per call that waits; see src/bindings/op.hpp).
function M.await(op, id, what)
  local t = waiting_task(what or "wait")
  if cancellation(t) or t.child_errors then
    op:cancel()  -- the operation was started for a task that cannot wait for it
    check_cancel(t)
  end
  if not op:done() then
    op_waiters[id] = t
    pending_ops = pending_ops + 1
    local ok, value = suspend(t, "op", op)
    if not ok then error(value, 0) end
  end
  return op:result()
end

---------------------------------------------------------------------------
-- Task lifecycle
---------------------------------------------------------------------------
local function spawn_chain(t)
  local chain, p = {}, t
  while p do
    chain[#chain + 1] = p.site
    p = p.parent
  end
  return chain
end

-- Wake the waiter behind join record rec, if t's end settles it. Returns
-- true when the record was still live (t's outcome was seen).
local function notify(rec, t)
  if rec.done then return false end
  rec.remaining = rec.remaining - 1
  if rec.mode == "any" then
    rec.first = t
    rec.done = true
  elseif rec.mode == "all" and not t.ok then
    rec.failed = t
    rec.done = true
  elseif rec.remaining == 0 then
    rec.done = true
  end
  local w = rec.task
  if rec.done and w.state == "waiting" and w.wait_obj == rec then
    w.wait_kind, w.wait_obj = nil, nil
    make_ready(w, true, t)
  end
  return true
end

-- Somebody saw t's outcome: its error must not also surface in its parent.
local function observe(t)
  t.observed = true
  local parent, q = t.error_parent, t.error_parent and t.error_parent.child_errors
  if q then
    for i = 1, #q do
      if q[i] == t.err then
        table.remove(q, i)
        break
      end
    end
    if #q == 0 then parent.child_errors = nil end
  end
  t.error_parent = nil
end

local function deliver_child_error(parent, err)
  push(parent, "child_errors", err)
  if parent.state == "waiting" and parent.wait_kind ~= "children" then
    detach_wait(parent)
    make_ready(parent, false, take_child_error(parent))
  end
end

local function finish(t)
  t.state = "done"
  local observed = false
  local joiners = t.joiners
  if joiners then
    t.joiners = nil
    for i = 1, #joiners do
      if notify(joiners[i], t) then observed = true end
    end
  end
  local parent = t.parent
  if parent then
    parent.children[t] = nil
    parent.nchildren = parent.nchildren - 1
  else
    roots[t] = nil
  end
  if not t.ok then
    local err = t.err
    -- A task ended by its own cancellation did what it was asked to.
    local cancelled = errors.same(err, t.cancel_reason)
    if parent and not cancelled and err.task_site == nil then
      err.task_site = t.site
      err.spawn_chain = spawn_chain(t)
    end
    if not observed and not cancelled then
      if parent and parent.state ~= "done" then
        t.error_parent = parent  -- until delivered or observed
        deliver_child_error(parent, err)
      elseif parent or t.detached then
        unobserved[#unobserved + 1] = t
      end
    end
  end
  if parent and parent.state == "waiting" and parent.wait_kind == "children" then
    make_ready(parent, true)
  end
end

-- The body of every task's coroutine.
local function task_main(t, fn, ...)
  local r = pack(xpcall(fn, errors.handler, ...))
  if r[1] then
    t.ok, t.results = true, r
  else
    t.ok, t.err = false, r[2]
  end
  -- A task's scope ends when its children's do. Failing cancels them first.
  if t.nchildren > 0 then
    if not t.ok then
      cancel(t, errors.new("cancelled", "the parent task failed: " .. tostring(t.err.message),
                          { shared = true }))
    end
    while t.nchildren > 0 do
      suspend(t, "children")
      local child_err = take_child_error(t)
      if child_err and t.ok then
        t.ok, t.err, t.results = false, child_err, nil
        cancel(t, errors.new("cancelled", "a sibling task failed: " .. tostring(child_err.message),
                            { shared = true }))
      elseif child_err then  -- this task already failed with another error
        unobserved[#unobserved + 1] = { err = child_err, site = child_err.task_site }
      end
    end
  end
  if t.child_errors then  -- errors that came after this task had failed
    for _, e in ipairs(t.child_errors) do
      unobserved[#unobserved + 1] = { err = e, site = e.task_site }
    end
    t.child_errors = nil
  end
  -- What the task opened and did not hand on (processes, sessions) closes
  -- with its scope, newest first. These must not wait.
  local deferred = t.deferred
  if deferred then
    t.deferred = nil
    for i = #deferred, 1, -1 do pcall(deferred[i]) end
  end
  finish(t)
end

local function run_task(t, ...)
  local prev = current
  current = t
  t.state = "running"
  local ok, err = co_resume(t.co, ...)
  current = prev
  if not ok then
    -- task_main catches everything; reaching here is a bug in this file.
    io.stderr:write("spritescript: internal scheduler error: ", tostring(err), "\n",
                    debug.traceback(t.co), "\n")
    os.exit(70)
  end
  if t.state == "done" then t.co = nil end  -- a finished task keeps no stack
end

local function new_task(fn, parent, site)
  if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
    errors.raise("usage", "sprites.spawn: expected a function, got " .. type(fn), nil, 3)
  end
  next_id = next_id + 1
  -- Sized up front: a table constructor with variable fields loses its
  -- size hint when LuaJIT saves it as bytecode (how the library is
  -- embedded), and resizing on every spawn halved spawn throughput.
  local t = table_new(0, 8)
  t.id, t.co, t.parent, t.site = next_id, co_create(task_main), parent, site
  t.state, t.nchildren = "ready", 0
  setmetatable(t, Task)
  if parent then
    local children = parent.children
    if not children then
      children = {}
      parent.children = children
    end
    children[t] = true
    parent.nchildren = parent.nchildren + 1
    t.spawn_scope = parent.scope
  else
    roots[t] = true
  end
  return t
end

---------------------------------------------------------------------------
-- Public API
---------------------------------------------------------------------------

-- sprites.spawn(fn, ...) -> task. Runs fn(...) as a child of the current
-- task, at once, until its first wait.
function M.spawn(fn, ...)
  local t = new_task(fn, current, core.where(2))
  run_task(t, t, fn, ...)
  return t
end

-- sprites.sleep(seconds). sleep(0) lets every other ready task run first.
function M.sleep(seconds)
  seconds = tonumber(seconds)
  if not seconds then errors.raise("usage", "sprites.sleep: expected a number of seconds", nil, 2) end
  local t = waiting_task("sprites.sleep")
  if seconds > 0 then
    local op, id = core.timer(seconds)
    M.await(op, id, "sprites.sleep")
    return
  end
  check_cancel(t)
  make_ready(t, true)
  t.wait_kind = "yield"
  co_yield(AWAIT)
  t.wait_kind = nil
  check_cancel(t)
end

-- sprites.now() -> monotonic seconds (for measuring durations).
M.now = core.now

-- sprites.current() -> the running task, or nil outside tasks.
function M.current() return current end

-- sprites.defer(fn): runs fn() when the current task's scope ends (after its
-- children), however it ends; for closing what the task opened. fn must
-- not wait. Returns a function that cancels the registration (for an
-- object handed on, e.g. a detached process).
function M.defer(fn)
  local t = current
  if not t then return function() end end
  local list = t.deferred
  if not list then
    list = {}
    t.deferred = list
  end
  list[#list + 1] = fn
  return function()
    for i = #list, 1, -1 do
      if list[i] == fn then table.remove(list, i) return end
    end
  end
end

-- Suspend rec.task until whoever holds the record wakes it (a task ending,
-- an event being set). Interrupted: mark the record dead and raise.
local function wait_record(rec, kind)
  local ok, value = suspend(rec.task, kind, rec)
  if not ok then
    rec.done = true
    error(value, 0)
  end
  return value
end

local function wait_or_timeout(timeout, rec, kind)
  if timeout then return M.timeout(timeout, wait_record, rec, kind) end
  return wait_record(rec, kind)
end

local function wait_done(self, what, timeout)
  local me = waiting_task(what)
  if self == me then errors.raise("usage", what .. ": a task cannot wait for itself", nil, 3) end
  if self.state ~= "done" then
    check_cancel(me)
    local rec = { task = me, remaining = 1, mode = "one" }
    push(self, "joiners", rec)
    wait_or_timeout(timeout, rec, "join")
  end
  observe(self)
end

-- task:wait(timeout?) -> the task's results, or raises its error.
function Task:wait(timeout)
  wait_done(self, "task:wait", timeout)
  if self.ok then return unpack(self.results, 2, self.results.n) end
  error(self.err, 0)
end

-- task:pwait(timeout?) -> true, results... | false, err (never raises the
-- task's error; still raises when the waiting task itself is cancelled).
function Task:pwait(timeout)
  local ok, err = pcall(wait_done, self, "task:pwait", timeout)
  if not ok then
    if errors.is(err, "timeout") and self.state ~= "done" and cancellation(current) == nil then
      return false, err
    end
    error(err, 0)
  end
  if self.ok then return true, unpack(self.results, 2, self.results.n) end
  return false, self.err
end

-- task:cancel(message?): cancel the task and its children. It sees a
-- `cancelled` error where it waits and runs its cleanup.
function Task:cancel(message)
  cancel(self, errors.new("cancelled", message and ("task cancelled: " .. message) or "task cancelled",
                          { shared = true }))
end

-- task:detach(): the task no longer belongs to its parent: the parent does
-- not wait for it, its errors are reported at exit instead of raised.
function Task:detach()
  local parent = self.parent
  if parent and self.state ~= "done" then
    parent.children[self] = nil
    parent.nchildren = parent.nchildren - 1
    if parent.state == "waiting" and parent.wait_kind == "children" then make_ready(parent, true) end
    roots[self] = true
  end
  self.parent = nil
  self.detached = true
  return self
end

-- task:status() -> "running" | "ready" | "waiting" | "ok" | "failed" | "cancelled"
function Task:status()
  if self.state ~= "done" then return self.state end
  if self.ok then return "ok" end
  return errors.same(self.err, self.cancel_reason) and "cancelled" or "failed"
end

function Task:__tostring()
  return ("<task %d %s, spawned at %s>"):format(self.id, self:status(), self.site or "?")
end

-- sprites.wait_any{t1, t2, ...} -> task, ok, results... of the first to end.
function M.wait_any(tasks, timeout)
  local me = waiting_task("sprites.wait_any")
  for i = 1, #tasks do
    local t = tasks[i]
    if t.state == "done" then
      observe(t)
      if t.ok then return t, true, unpack(t.results, 2, t.results.n) end
      return t, false, t.err
    end
  end
  if #tasks == 0 then errors.raise("usage", "sprites.wait_any: no tasks to wait for", nil, 2) end
  check_cancel(me)
  local rec = { task = me, remaining = #tasks, mode = "any" }
  for i = 1, #tasks do push(tasks[i], "joiners", rec) end
  wait_or_timeout(timeout, rec, "join")
  local t = rec.first
  observe(t)
  if t.ok then return t, true, unpack(t.results, 2, t.results.n) end
  return t, false, t.err
end

-- sprites.wait_all{t1, t2, ...} -> {first result of t1, of t2, ...}.
-- Raises the first error (in the order the tasks fail).
function M.wait_all(tasks, timeout)
  local me = waiting_task("sprites.wait_all")
  local rec = { task = me, remaining = 0, mode = "all" }
  for i = 1, #tasks do
    local t = tasks[i]
    if t.state == "done" then
      if not t.ok then
        observe(t)
        error(t.err, 0)
      end
    else
      rec.remaining = rec.remaining + 1
    end
  end
  if rec.remaining > 0 then
    check_cancel(me)
    for i = 1, #tasks do
      if tasks[i].state ~= "done" then push(tasks[i], "joiners", rec) end
    end
    wait_or_timeout(timeout, rec, "join")
    if rec.failed then
      observe(rec.failed)
      error(rec.failed.err, 0)
    end
  end
  local out = {}
  for i = 1, #tasks do
    observe(tasks[i])
    out[i] = tasks[i].results[2]
  end
  return out
end

-- sprites.timeout(seconds, fn, ...) -> fn's results. When the time runs out,
-- fn's waits raise a `timeout` error (and the children it spawned are
-- cancelled); the error leaves timeout() unless fn handles it.
function M.timeout(seconds, fn, ...)
  seconds = tonumber(seconds)
  if not seconds then errors.raise("usage", "sprites.timeout: expected a number of seconds", nil, 2) end
  local t = waiting_task("sprites.timeout")
  check_cancel(t)
  local scope = { up = t.scope, task = t, seconds = seconds }
  local op, id = core.timer(seconds)
  op_waiters[id] = scope
  pending_ops = pending_ops + 1
  t.scope = scope
  local r = pack(xpcall(fn, errors.handler, ...))
  t.scope = scope.up
  if op_waiters[id] == scope then
    op_waiters[id] = nil
    pending_ops = pending_ops - 1
    op:cancel()
  end
  if r[1] then return unpack(r, 2, r.n) end
  error(r[2], 0)
end

local function expire(scope)
  local t = scope.task
  if t.state == "done" then return end
  local tb = t.state == "waiting" and debug.traceback(t.co, "", 0):gsub("^\n", "") or nil
  scope.reason = errors.new("timeout", ("timed out after %g s"):format(scope.seconds),
                            { traceback = tb })
  cancel_children_of_scope(t, scope, scope.reason)
  try_interrupt(t)
end

-- sprites.shield(fn, ...) -> fn's results. Cancellation waits until fn is
-- done: for cleanup that must itself wait (restoring a checkpoint, ...).
function M.shield(fn, ...)
  local t = current
  if not t then return fn(...) end
  local scope = { up = t.scope, shield = true }
  t.scope = scope
  local r = pack(xpcall(fn, errors.handler, ...))
  t.scope = scope.up
  if r[1] then return unpack(r, 2, r.n) end
  error(r[2], 0)
end

-- sprites.event() -> an event tasks can wait for; set() wakes them all.
local Event = {}
Event.__index = Event

function M.event()
  return setmetatable({ is_set = false, waiters = {} }, Event)
end

function Event:set()
  if self.is_set then return end
  self.is_set = true
  local waiters = self.waiters
  self.waiters = {}
  for i = 1, #waiters do
    local rec = waiters[i]
    if not rec.done then
      rec.done = true
      local w = rec.task
      w.wait_kind, w.wait_obj = nil, nil
      make_ready(w, true)
    end
  end
end

function Event:wait(timeout)
  if self.is_set then return end
  local me = waiting_task("event:wait")
  check_cancel(me)
  local rec = { task = me }
  self.waiters[#self.waiters + 1] = rec
  wait_or_timeout(timeout, rec, "event")
end

---------------------------------------------------------------------------
-- The coroutine library, owned by the host
---------------------------------------------------------------------------
-- A user's coroutine that waits (calls s:run, sleep, ...) yields AWAIT to
-- whoever resumed it. These wrappers pass such yields on up to the
-- scheduler and hand the answer back down, so generators and iterators
-- built on coroutines can wait like any other code.
local function pass(co, ok, first, ...)
  if ok and first == AWAIT then
    if not co_isyieldable() then
      -- The resume itself sits in a C callback: fail the wait inside co.
      local t = current
      if t then
        detach_wait(t)
        t.state = "running"
      end
      return pass(co, co_resume(co, false, cannot_wait_error("wait")))
    end
    return pass(co, co_resume(co, co_yield(AWAIT)))
  end
  return ok, first, ...
end

local function wrap_result(ok, ...)
  if ok then return ... end
  error((...), 0)
end

M.coroutine = {
  create = coroutine.create,
  status = coroutine.status,
  running = coroutine.running,
  isyieldable = coroutine.isyieldable,
  resume = function(co, ...) return pass(co, co_resume(co, ...)) end,
  wrap = function(fn)
    local co = co_create(fn)
    return function(...) return wrap_result(pass(co, co_resume(co, ...))) end
  end,
  yield = function(...)
    local t = current
    if t and co_running() == t.co then
      errors.raise("usage", "coroutine.yield: not inside a coroutine (this is a task's own body;"
        .. " to let other tasks run, use sprites.sleep(0))", nil, 2)
    end
    return co_yield(...)
  end,
}

---------------------------------------------------------------------------
-- The loop
---------------------------------------------------------------------------
-- What to do on Ctrl-C; the runtime sets it (cancel the script, or the
-- REPL's current line).
M.on_interrupt = function() end

local function dispatch(n, interrupted)
  for i = 1, n do
    local id = poll_ids[i]
    poll_ids[i] = nil
    local w = op_waiters[id]
    if w then
      op_waiters[id] = nil
      pending_ops = pending_ops - 1
      if getmetatable(w) == Task then
        if w.state == "waiting" and w.wait_kind == "op" then
          w.wait_kind, w.wait_obj = nil, nil
          make_ready(w, true)
        end
      else
        expire(w)
      end
    end
  end
  if interrupted and core.take_interrupt() then M.on_interrupt() end
end

local function poll(timeout)
  dispatch(core.poll(timeout, poll_ids))
end

-- Runs the loop until done() is true. Returns false when every task waits
-- and nothing can wake them (a deadlock), after trying to break it by
-- cancelling `root` with a `deadlock` error.
function M.run_until(done, root)
  local burst = 0
  local deadlocked = false
  while not done() do
    if head <= tail then
      local t = ready[head]
      ready[head] = nil
      head = head + 1
      if t.state == "ready" then
        local ok, value = t.rv_ok, t.rv
        t.rv_ok, t.rv = nil, nil  -- do not keep what woke the task alive
        run_task(t, ok, value)
      end
      deadlocked = false
      burst = burst + 1
      if burst >= 128 then  -- let I/O and Ctrl-C in while tasks keep each other busy
        burst = 0
        poll(0)
      end
    else
      head, tail, burst = 1, 0, 0
      if pending_ops > 0 then
        poll(-1)
        deadlocked = false
      else
        poll(0)  -- Ctrl-C may still arrive
        if head > tail then
          if deadlocked or not root then return false end
          deadlocked = true
          M.deadlock_error = errors.new("deadlock",
            "every task is waiting and nothing can wake them (an event never set, or tasks waiting for each other)",
            { shared = true })
          cancel(root, M.deadlock_error)
        end
      end
    end
  end
  return true
end

-- M.run(fn, ...) -> the finished root task. Runs fn as a root task and the
-- loop until it and every task it spawned have ended; detached tasks still
-- running then are cancelled (their cleanup runs) and waited for.
function M.run(fn, site, ...)
  local root = new_task(fn, nil, site)
  run_task(root, root, fn, ...)
  if not M.run_until(function() return root.state == "done" end, root) then
    return root, "deadlock"
  end
  if next(roots) then
    local reason = errors.new("cancelled", "the script finished", { shared = true })
    for t in pairs(roots) do cancel(t, reason) end
    M.run_until(function() return next(roots) == nil end)
  end
  return root
end

-- Cancel every running task (Ctrl-C on a script).
function M.cancel_all(reason)
  for t in pairs(roots) do cancel(t, reason) end
end

-- Failed tasks whose error nobody waited for (reported at exit).
function M.take_unobserved()
  local list = {}
  for _, t in ipairs(unobserved) do
    if not t.observed then list[#list + 1] = t end
  end
  unobserved = {}
  return list
end

-- Scheduler counters, for tests and benchmarks.
function M.stats()
  local nroots = 0
  for _ in pairs(roots) do nroots = nroots + 1 end
  return { ready = tail - head + 1, pending_ops = pending_ops, roots = nroots, spawned = next_id }
end

return M
