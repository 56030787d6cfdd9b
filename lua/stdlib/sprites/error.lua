-- sprites.error: structured errors.
--
-- Every failure the runtime raises is a table with a small, stable `kind`
-- (see M.exit_codes), a one-line `message`, and a `traceback` the runtime
-- fills in where the error was first raised. Plain `error("text")` from a
-- script is wrapped into kind "error" when it leaves a task. tostring(err)
-- is one line; the command line adds the traceback with -v.
local M = {}

local Error = {}
Error.__index = Error
M.Error = Error

-- The process exit code for each kind; anything else exits 1. Kept in step
-- with docs/errors.md.
M.exit_codes = {
  error = 1,          -- a Lua error in the script
  usage = 2,          -- bad command line, missing script
  syntax = 3,         -- a script or module does not compile
  not_found = 4,      -- module, sprite, checkpoint... does not exist
  exit = 5,           -- a command run with check=true exited non-zero
  unauthorized = 6,   -- missing or wrong token
  conflict = 7,       -- the API refused: already exists, busy, ...
  rate_limited = 7,
  capacity = 7,
  api = 7,
  network = 8,        -- could not reach the API, or it spoke nonsense
  protocol = 8,
  deadlock = 10,      -- every task waits and nothing can wake them
  timeout = 124,      -- GNU timeout's convention
  cancelled = 125,
  interrupted = 130,  -- Ctrl-C (128 + SIGINT)
}

function Error:__tostring()
  local where = self.task_site and (" (in task spawned at " .. self.task_site .. ")") or ""
  if self.kind == "error" then return self.message .. where end
  return self.kind .. ": " .. self.message .. where
end

local function is_error(value)
  return getmetatable(value) == Error
end
M.is_error = is_error

-- M.new(kind, message, fields?) -> error object (not raised)
function M.new(kind, message, fields)
  local e = fields or {}
  e.kind = kind
  e.message = message
  return setmetatable(e, Error)
end

-- M.raise(kind, message, fields?, level?): raise a new error. The traceback
-- starts at the caller (level 2) unless told otherwise.
function M.raise(kind, message, fields, level)
  local e = M.new(kind, message, fields)
  e.traceback = debug.traceback("", (level or 1) + 1):gsub("^\n", "")
  error(e, 0)
end

-- M.is(err, kind): is `err` a structured error (of that kind, if given)?
function M.is(err, kind)
  return is_error(err) and (kind == nil or err.kind == kind)
end

-- M.wrap(value, traceback?) -> error object. Turns whatever was raised into
-- a structured error, keeping an existing one (and its traceback) as it is.
function M.wrap(value, traceback)
  local e
  if is_error(value) then
    e = value
  elseif type(value) == "table" and getmetatable(value) == nil and type(value.kind) == "string"
      and value.message ~= nil then
    e = setmetatable(value, Error)
    e.message = tostring(e.message)
  elseif type(value) == "table" then
    -- A table raised without kind/message: keep it reachable as `value`.
    e = M.new("error", tostring(value), { value = value })
  else
    e = M.new("error", tostring(value))
  end
  if e.traceback == nil and traceback then e.traceback = traceback end
  return e
end

-- A message handler for xpcall that wraps and records the traceback of the
-- place the error was raised (the stack is still intact there).
--
-- A cancellation reason is one object shared by every task it cancels
-- (`shared = true`): each task that raises it gets its own copy, with its
-- own traceback and `origin` pointing at the shared reason.
function M.handler(value)
  if is_error(value) then
    if value.shared then
      local copy = M.new(value.kind, value.message, { origin = value })
      copy.traceback = debug.traceback("", 2):gsub("^\n", "")
      return copy
    end
    if value.traceback then return value end
  end
  return M.wrap(value, (debug.traceback("", 2):gsub("^\n", "")))
end

-- M.same(err, reason): is err the shared reason itself, or a task's copy?
function M.same(err, reason)
  return reason ~= nil and (err == reason or (is_error(err) and err.origin == reason))
end

-- M.location(err) -> "file:line" of the innermost frame of the error's
-- traceback that belongs to user code (not the built-in library), or nil.
function M.location(err)
  if not (is_error(err) and err.traceback) then return nil end
  for line in err.traceback:gmatch("[^\n]+") do
    local at = line:match("^%s*([^%s:]+:%d+):")
    if at and not at:match("^stdlib/") and not at:match("/lua/stdlib/") then return at end
  end
  return nil
end

function M.exit_code(err)
  if err == nil then return 0 end
  local kind = is_error(err) and err.kind or "error"
  return M.exit_codes[kind] or 1
end

return M
