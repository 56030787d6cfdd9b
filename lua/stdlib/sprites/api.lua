-- sprites.api: the Sprites API in Lua: sprites, commands, processes and
-- checkpoints (docs/lua-api.md); files (sprites/files.lua), services and
-- sessions (sprites/services.lua), tunnels (sprites/network.lua) and
-- policies (sprites/policy.lua) extend Sprite from their own files. Every call waits in the calling task only
-- (the C++ client runs it as an op on the loop; spritescript.client), and
-- every failure is a structured error (sprites.error) naming what failed.
local client = require "spritescript.client"
local task = require "sprites.task"
local errors = require "sprites.error"

local M = {}

-- Waits for a client op; returns its value or raises its error (kind,
-- message, status) at the caller's caller: the script's line.
local function call(what, op, id)
  local value, err = task.await(op, id, what)
  if value == nil and type(err) == "table" then
    errors.raise(err.kind or "api", err.message or what, {
      status = err.status, retry_after = err.retry_after, code = err.code, op = what,
    }, 3)
  end
  return value
end

-- Checks an options table against the names it may hold, so a typo is an
-- error naming it rather than an option silently ignored.
local function check_options(what, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    errors.raise("usage", what .. ": options must be a table", nil, 3)
  end
  for key in pairs(opts) do
    if type(key) == "string" and not allowed[key] then
      local names = {}
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      errors.raise("usage", ("%s: unknown option '%s' (known: %s)"):format(
        what, key, table.concat(names, ", ")), nil, 3)
    end
  end
  return opts
end

local function set(...)
  local s = {}
  for _, name in ipairs({ ... }) do s[name] = true end
  return s
end

---------------------------------------------------------------------------
-- Sprite objects
---------------------------------------------------------------------------
local Sprite = {}
Sprite.__index = Sprite
M.Sprite = Sprite

function Sprite:__tostring() return "sprite " .. self.name end

local function sprite_of(info)
  local s = setmetatable({ name = info.name }, Sprite)
  s.info = info
  return s
end

-- sprites.sprite(name) -> a handle, without a request
function M.sprite(name)
  if type(name) ~= "string" or name == "" then
    errors.raise("usage", "sprites.sprite: expected a sprite name", nil, 2)
  end
  return setmetatable({ name = name }, Sprite)
end

local create_options = set("labels", "url_auth", "wait_for_capacity", "exist_ok")

-- sprites.create(name, {labels=, url_auth=, wait_for_capacity=, exist_ok=})
function M.create(name, opts)
  opts = check_options("sprites.create", opts, create_options)
  if type(name) ~= "string" then errors.raise("usage", "sprites.create: expected a name", nil, 2) end
  local info, err = task.await(client.create(name, opts))
  if info == nil then
    if opts.exist_ok and err.kind == "conflict" then return M.get(name) end
    errors.raise(err.kind, err.message, { status = err.status, op = "create " .. name }, 2)
  end
  return sprite_of(info)
end

-- sprites.get(name) -> sprite (not_found when it does not exist)
function M.get(name)
  return sprite_of(call("get sprite " .. tostring(name), client.get(name)))
end

-- sprites.list(prefix) -> array of sprites (every page)
-- sprites.list(prefix) or sprites.list{prefix=, labels={...}} -> array of
-- sprites (every page); with labels, those carrying every one of them.
function M.list(filter)
  local prefix, labels = filter, nil
  if type(filter) == "table" then
    check_options("sprites.list", filter, set("prefix", "labels"))
    prefix, labels = filter.prefix, filter.labels
    if labels ~= nil and type(labels) ~= "table" then
      errors.raise("usage", "sprites.list: labels must be an array of strings", nil, 2)
    end
  elseif filter ~= nil and type(filter) ~= "string" then
    errors.raise("usage", "sprites.list: expected a prefix or {prefix=, labels=}", nil, 2)
  end
  local out = {}
  for _, info in ipairs(call("list sprites", client.list(prefix or ""))) do
    local keep = true
    for _, wanted in ipairs(labels or {}) do
      local has = false
      for _, label in ipairs(info.labels or {}) do has = has or label == wanted end
      keep = keep and has
    end
    if keep then out[#out + 1] = sprite_of(info) end
  end
  return out
end

-- sprites.delete(name)
function M.delete(name)
  call("delete sprite " .. tostring(name), client.delete(name))
end

function Sprite:refresh()
  self.info = call("get sprite " .. self.name, client.get(self.name))
  return self.info
end

function Sprite:status() return self:refresh().status end
function Sprite:url() return (self.info or self:refresh()).url end
function Sprite:delete() M.delete(self.name) end
function Sprite:restart() return call("restart " .. self.name, client.restart(self.name)) end
function Sprite:check() return call("check " .. self.name, client.check(self.name)) end

local update_options = set("labels", "url_auth")

function Sprite:update(opts)
  check_options("sprite:update", opts, update_options)
  self.info = call("update sprite " .. self.name, client.update(self.name, opts))
  return self.info
end

---------------------------------------------------------------------------
-- Commands
---------------------------------------------------------------------------
local run_options = set("dir", "env", "stdin", "tty", "cols", "rows", "timeout", "grace", "check")

-- A string runs through `bash -lc`; an array is the argv. Options may come
-- in the array itself (s:run{"git", "pull", dir = "/src"}) or as `opts`.
local function command_and_options(what, cmd, opts, allowed)
  local argv, merged = nil, {}
  if type(cmd) == "string" then
    argv = { "bash", "-lc", cmd }
  elseif type(cmd) == "table" then
    argv = {}
    for i, v in ipairs(cmd) do
      if type(v) ~= "string" and type(v) ~= "number" then
        errors.raise("usage", ("%s: argument %d of the command is a %s"):format(what, i, type(v)), nil, 4)
      end
      argv[i] = tostring(v)
    end
    for k, v in pairs(cmd) do
      if type(k) == "string" then merged[k] = v end
    end
  else
    errors.raise("usage", what .. ": expected a command string or an argv table", nil, 4)
  end
  if #argv == 0 then errors.raise("usage", what .. ": the command is empty", nil, 4) end
  if opts ~= nil then
    if type(opts) ~= "table" then errors.raise("usage", what .. ": options must be a table", nil, 4) end
    for k, v in pairs(opts) do merged[k] = v end
  end
  for key in pairs(merged) do
    if not allowed[key] then
      local names = {}
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      errors.raise("usage", ("%s: unknown option '%s' (known: %s)"):format(
        what, key, table.concat(names, ", ")), nil, 4)
    end
  end
  return argv, merged
end

-- s:run(cmd, opts) -> {code, ok, stdout, stderr, timed_out, duration, session_id}
-- A non-zero exit is data (r.ok == false) unless opts.check: then it raises
-- kind "exit". opts.timeout (seconds) sends TERM, then KILL after opts.grace
-- (default 5 s), and keeps the output so far (r.timed_out).
function Sprite:run(cmd, opts)
  local argv, o = command_and_options("sprite:run", cmd, opts, run_options)
  local stdin = o.stdin
  if type(stdin) == "function" then  -- an iterator of pieces
    local parts = {}
    for piece in stdin do parts[#parts + 1] = piece end
    o.stdin = table.concat(parts)
  elseif stdin ~= nil and type(stdin) ~= "string" then
    errors.raise("usage", "sprite:run: stdin must be a string or an iterator", nil, 2)
  end
  local result = call(("run %s on %s"):format(argv[1], self.name), client.run(self.name, argv, o))
  result.command = argv
  if o.check and not result.ok then
    local why = result.timed_out and "timed out" or ("exited with code " .. result.code)
    local detail = result.stderr ~= "" and (": " .. result.stderr:gsub("%s+$", ""):sub(1, 300)) or ""
    errors.raise("exit", ("%s on %s %s%s"):format(argv[1], self.name, why, detail),
      { code = result.code, result = result }, 2)
  end
  return result
end

---------------------------------------------------------------------------
-- Streaming processes
---------------------------------------------------------------------------
local Process = {}
Process.__index = Process
M.Process = Process

local spawn_options = set("dir", "env", "tty", "cols", "rows")

-- A Process object around a client process handle (spawn, attach). It
-- belongs to the task that made it: when that task's scope ends, a process
-- still running is ended too (TERM, then KILL), unless it was detached.
local function process_of(sprite, argv, handle)
  local p = setmetatable({
    sprite = sprite, command = argv, handle = handle,
    buffers = { stdout = {}, stderr = {} }, code = nil,
  }, Process)
  p.session_id = handle:session_id()
  p.release = task.defer(function() handle:close(true) end)
  return p
end

-- s:spawn(cmd, opts) -> process: read/lines/write/close_stdin/wait/kill/detach
function Sprite:spawn(cmd, opts)
  local argv, o = command_and_options("sprite:spawn", cmd, opts, spawn_options)
  local handle = call(("spawn %s on %s"):format(argv[1], self.name), client.spawn(self.name, argv, o))
  return process_of(self, argv, handle)
end

-- Takes the next event into the buffers; false once the process exited.
local function pump(p)
  if p.code ~= nil then return false end
  local event = call("read from " .. p.command[1], p.handle:next())
  if event == nil then return false end
  if event.type == "output" then
    local b = p.buffers[event.stream]
    b[#b + 1] = event.data
  elseif event.type == "exit" then
    p.code = event.code
    p.handle:close()
  end
  return true
end

-- p:read(stream) -> the next piece of output of that stream ("stdout" by
-- default), or nil once the process ended and everything was read.
function Process:read(stream)
  local b = self.buffers[stream or "stdout"]
  if not b then errors.raise("usage", "process:read: stream is 'stdout' or 'stderr'", nil, 2) end
  while #b == 0 do
    if not pump(self) then return nil end
  end
  return table.remove(b, 1)
end

-- p:lines(stream) -> iterator over complete lines (the last one may lack "\n")
function Process:lines(stream)
  local pending = ""
  return function()
    while true do
      local nl = pending:find("\n", 1, true)
      if nl then
        local line = pending:sub(1, nl - 1)
        pending = pending:sub(nl + 1)
        return line
      end
      local piece = self:read(stream)
      if piece == nil then
        if pending == "" then return nil end
        local last = pending
        pending = ""
        return last
      end
      pending = pending .. piece
    end
  end
end

function Process:write(data)
  call("write to " .. self.command[1], self.handle:write(data))
end

function Process:close_stdin()
  call("close stdin of " .. self.command[1], self.handle:close_stdin())
end

function Process:kill(signal)
  call("signal " .. self.command[1], self.handle:signal(signal or "TERM"))
end

function Process:resize(cols, rows)
  call("resize " .. self.command[1], self.handle:resize(cols, rows))
end

-- p:detach(): leaves the command running; attach later by session id.
function Process:detach()
  call("detach " .. self.command[1], self.handle:detach())
  self.release()
end

-- p:wait() -> code, stdout, stderr (what was not read yet)
function Process:wait()
  while pump(self) do end
  local out = table.concat(self.buffers.stdout)
  local err = table.concat(self.buffers.stderr)
  self.buffers = { stdout = {}, stderr = {} }
  return self.code, out, err
end

---------------------------------------------------------------------------
-- Checkpoints
---------------------------------------------------------------------------
local Checkpoint = {}
Checkpoint.__index = Checkpoint
M.Checkpoint = Checkpoint

function Checkpoint:__tostring() return "checkpoint " .. self.id .. " of " .. self.sprite.name end

local function checkpoint_of(sprite, info)
  info.sprite = sprite
  return setmetatable(info, Checkpoint)
end

-- Follows a progress stream: calls on_progress(event) for each event, in
-- this task; an `error` event raises (the op fails). Returns the last event.
local function follow(what, events, on_progress)
  local last
  while true do
    local event = call(what, events:next())
    if event == nil then return last end
    last = event
    if on_progress then on_progress(event) end
  end
end

local checkpoint_options = set("comment", "on_progress")

-- s:checkpoint{comment=, on_progress=} -> checkpoint object
function Sprite:checkpoint(opts)
  if type(opts) == "string" then opts = { comment = opts } end
  opts = check_options("sprite:checkpoint", opts, checkpoint_options)
  local what = "checkpoint " .. self.name
  local last = follow(what, call(what, client.checkpoint(self.name, opts.comment or "")), opts.on_progress)
  local id = last and last.type == "complete" and last.message:match("Checkpoint (%S+) created")
  if not id then
    errors.raise("protocol", what .. ": the stream ended without naming the new checkpoint", nil, 2)
  end
  return self:get_checkpoint(id)
end

-- s:checkpoints{auto=true} -> array of checkpoints, newest first
function Sprite:checkpoints(opts)
  opts = check_options("sprite:checkpoints", opts, set("auto"))
  local out = {}
  for i, info in ipairs(call("list checkpoints of " .. self.name,
                             client.checkpoints(self.name, opts.auto and true or false))) do
    out[i] = checkpoint_of(self, info)
  end
  return out
end

function Sprite:get_checkpoint(id)
  return checkpoint_of(self, call("get checkpoint " .. tostring(id) .. " of " .. self.name,
                                  client.get_checkpoint(self.name, tostring(id))))
end

local restore_options = set("on_progress", "wait")

-- s:restore(checkpoint_or_id, {on_progress=, wait=true}): returns once the
-- sprite answers again (unless wait = false).
function Sprite:restore(cp, opts)
  opts = check_options("sprite:restore", opts, restore_options)
  local id = type(cp) == "table" and cp.id or cp
  if type(id) ~= "string" then
    errors.raise("usage", "sprite:restore: expected a checkpoint or its id", nil, 2)
  end
  local what = ("restore %s to %s"):format(self.name, id)
  local last = follow(what, call(what, client.restore(self.name, id)), opts.on_progress)
  if not (last and last.type == "complete") then
    errors.raise("protocol", what .. ": the stream ended before it said complete", nil, 2)
  end
  if opts.wait ~= false then
    -- The sprite comes back asynchronously on some servers: wait until a
    -- command runs (30 s at most).
    local deadline = task.now() + 30
    while true do
      local ok, result = pcall(self.run, self, { "true" })
      if ok and result.ok then break end
      if task.now() > deadline then
        errors.raise("timeout", what .. ": the sprite did not answer within 30 s after the restore", nil, 2)
      end
      task.sleep(0.25)
    end
  end
end

function Sprite:delete_checkpoint(cp)
  local id = type(cp) == "table" and cp.id or cp
  call(("delete checkpoint %s of %s"):format(tostring(id), self.name),
       client.delete_checkpoint(self.name, tostring(id)))
end

function Checkpoint:restore(opts) return self.sprite:restore(self, opts) end
function Checkpoint:delete() return self.sprite:delete_checkpoint(self) end

-- Files, services and sessions live in their own files and add their
-- methods to Sprite with these helpers.
local helpers = {
  client = client, task = task, errors = errors, call = call, check_options = check_options,
  set = set, follow = follow, process_of = process_of,
}
require("sprites.files").install(M, helpers)
require("sprites.services").install(M, helpers)
require("sprites.network").install(M, helpers)
require("sprites.policy").install(M, helpers)

return M
