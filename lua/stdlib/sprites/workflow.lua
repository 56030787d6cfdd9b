-- sprites.workflow: the patterns people write around agents, made safe to
-- run unattended (docs/lua-api.md, "sprites.workflow").
local task = require "sprites.task"
local errors = require "sprites.error"
local api = require "sprites.api"

local M = {}

local function pack(...) return { n = select("#", ...), ... } end

-- Option tables are checked like the Sprite methods': a typo is a usage
-- error naming it, never an option silently ignored.
local function options(what, opts, ...)
  if opts == nil then return {} end
  if type(opts) ~= "table" then errors.raise("usage", what .. ": options must be a table", nil, 3) end
  local known = {}
  for _, name in ipairs({ ... }) do known[name] = true end
  for key in pairs(opts) do
    if not known[key] then
      local names = { ... }
      table.sort(names)
      errors.raise("usage", ("%s: unknown option '%s' (known: %s)"):format(
        what, tostring(key), table.concat(names, ", ")), nil, 3)
    end
  end
  return opts
end

-- checkpointed(sprite, {comment=, keep_failed=, on_progress=}, fn) -> fn's results
--
-- Checkpoints the sprite, runs fn(sprite, checkpoint), and when fn raises,
-- returns false, or is cancelled (Ctrl-C, a timeout) restores the
-- checkpoint, then re-raises (or returns false). The restore is shielded:
-- it completes even while the task is being cancelled. keep_failed = true
-- first takes a checkpoint of the failed state (its id in err.failed_checkpoint
-- or the second result).
function M.checkpointed(sprite, opts, fn)
  if type(opts) == "function" then opts, fn = nil, opts end
  if getmetatable(sprite) ~= api.Sprite then
    errors.raise("usage", "workflow.checkpointed: expected a sprite (sprites.get or sprites.sprite)", nil, 2)
  end
  if type(fn) ~= "function" then
    errors.raise("usage", "workflow.checkpointed: expected a function to run", nil, 2)
  end
  opts = options("workflow.checkpointed", opts, "comment", "keep_failed", "on_progress")
  local cp = sprite:checkpoint { comment = opts.comment or "workflow.checkpointed", on_progress = opts.on_progress }
  local results = pack(xpcall(fn, errors.handler, sprite, cp))
  local ok = results[1]
  if ok and results[2] ~= false then return select(2, unpack(results, 1, results.n)) end
  local failed_cp
  task.shield(function()
    if opts.keep_failed then
      failed_cp = sprite:checkpoint { comment = "failed state before restoring " .. cp.id }
    end
    sprite:restore(cp, { on_progress = opts.on_progress })
  end)
  if not ok then
    local err = results[2]
    if errors.is_error(err) then
      err.restored_to = cp.id
      err.failed_checkpoint = failed_cp and failed_cp.id or nil
    end
    error(err, 0)
  end
  return false, failed_cp
end

-- ephemeral(prefix, fn, opts) -> fn's results: creates a sprite named
-- prefix-<random>, runs fn(sprite), and always deletes it (also when fn
-- fails or the task is cancelled).
function M.ephemeral(prefix, fn, opts)
  if type(prefix) ~= "string" or type(fn) ~= "function" then
    errors.raise("usage", "workflow.ephemeral(prefix, fn): expected a name prefix and a function", nil, 2)
  end
  local name = ("%s-%d%04d"):format(prefix, os.time() % 100000, math.random(0, 9999))
  local sprite = api.create(name, opts)
  local results = pack(xpcall(fn, errors.handler, sprite))
  task.shield(function() pcall(api.delete, name) end)
  if not results[1] then error(results[2], 0) end
  return select(2, unpack(results, 1, results.n))
end

-- Kinds of failure worth another attempt: the API or the network, not the
-- script or the command.
local transient = { network = true, rate_limited = true, capacity = true, protocol = true }

-- retry({attempts=3, base=0.5, max=30, on={kinds...}, after_start=false}, fn) -> fn's results
--
-- Runs fn(attempt, started) until it succeeds or attempts run out, waiting
-- base * 2^n seconds (jittered, capped at max; a rate-limit error's
-- retry_after wins) between tries. Only transient kinds are retried
-- (network, rate_limited, capacity, protocol; `on` replaces the set). Once
-- fn calls started() (say, an agent was launched), a failure is not retried
-- unless after_start = true: an agent must not run twice by accident.
function M.retry(opts, fn)
  if type(opts) == "function" then opts, fn = {}, opts end
  opts = options("workflow.retry", opts, "attempts", "base", "max", "on", "after_start")
  local attempts = opts.attempts or 3
  if type(attempts) ~= "number" or attempts < 1 then
    errors.raise("usage", "workflow.retry: attempts must be 1 or more", nil, 2)
  end
  local base, max = opts.base or 0.5, opts.max or 30
  local kinds = transient
  if opts.on then
    kinds = {}
    for _, k in ipairs(opts.on) do kinds[k] = true end
  end
  for attempt = 1, attempts do
    local begun = false
    local function started() begun = true end
    local r = pack(xpcall(fn, errors.handler, attempt, started))
    if r[1] then return select(2, unpack(r, 1, r.n)) end
    local err = r[2]
    local again = attempt < attempts and errors.is_error(err) and kinds[err.kind]
      and (not begun or opts.after_start)
    if not again then error(err, 0) end
    local wait = math.min(max, base * 2 ^ (attempt - 1)) * (0.5 + math.random() / 2)
    if err.retry_after then wait = math.max(wait, err.retry_after) end
    task.sleep(wait)
  end
end

-- parallel(items, fn, {limit=8}) -> results (results[i] = fn(items[i], i))
--
-- At most `limit` at once, in tasks of the caller (Ctrl-C and timeouts
-- reach them). The first error cancels the rest and is raised; a
-- rate_limited error waits its retry_after and tries that item again.
function M.parallel(items, fn, opts)
  opts = options("workflow.parallel", opts, "limit")
  if type(items) ~= "table" or type(fn) ~= "function" then
    errors.raise("usage", "parallel(items, fn [, opts]): expected a table and a function", nil, 2)
  end
  local limit = opts.limit or 8
  local results, next_i = {}, 0
  local workers = {}
  local function worker()
    while next_i < #items do
      next_i = next_i + 1
      local i = next_i
      while true do
        local r = pack(xpcall(fn, errors.handler, items[i], i))
        if r[1] then
          results[i] = r[2]
          break
        end
        local err = r[2]
        if not (errors.is(err, "rate_limited") and err.retry_after) then error(err, 0) end
        task.sleep(err.retry_after)
      end
    end
  end
  for w = 1, math.min(limit, #items) do workers[w] = task.spawn(worker) end
  task.wait_all(workers)
  return results
end

-- bake(sprite, steps, {version=}) -> checkpoint
--
-- Idempotent set-up: when the sprite already has a checkpoint commented
-- "bake <version>", returns it; otherwise runs the steps (command strings
-- or argv tables run with check = true, or functions called with the
-- sprite) and takes that golden checkpoint. reset() restores it.
function M.bake(sprite, steps, opts)
  opts = options("workflow.bake", opts, "version")
  local label = "bake " .. tostring(opts.version or "1")
  for _, cp in ipairs(sprite:checkpoints()) do
    if cp.comment == label then return cp, false end
  end
  for i, step in ipairs(steps) do
    if type(step) == "function" then
      step(sprite)
    elseif type(step) == "string" or type(step) == "table" then
      sprite:run(step, { check = true })
    else
      errors.raise("usage", ("workflow.bake: step %d is a %s"):format(i, type(step)), nil, 2)
    end
  end
  return sprite:checkpoint { comment = label }, true
end

-- reset(sprite, {version=}): restores the golden checkpoint bake() made.
function M.reset(sprite, opts)
  opts = options("workflow.reset", opts, "version")
  local label = "bake " .. tostring(opts.version or "1")
  for _, cp in ipairs(sprite:checkpoints()) do
    if cp.comment == label then return sprite:restore(cp) end
  end
  errors.raise("not_found", ("workflow.reset: %s has no checkpoint %q (run bake first)")
    :format(sprite.name, label), nil, 2)
end

-- hold(sprite, fn) -> fn's results: keeps the sprite awake while fn runs
-- (an attached session does; it ends with fn).
function M.hold(sprite, fn)
  local keeper = sprite:spawn { "sleep", "2147483647" }
  local r = pack(xpcall(fn, errors.handler, sprite))
  task.shield(function() pcall(keeper.kill, keeper, "KILL") end)
  if not r[1] then error(r[2], 0) end
  return select(2, unpack(r, 1, r.n))
end

-- secret_file(sprite, path, value): writes a secret to a 0600 file through
-- stdin, so it never appears in a command line or a process list.
function M.secret_file(sprite, path, value)
  sprite:run({ "sh", "-c", 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1"', "secret", path },
    { stdin = value, check = true })
end

-- redact(text, secrets) -> text with each secret value replaced by "***"
function M.redact(text, secrets)
  for _, secret in pairs(secrets or {}) do
    if type(secret) == "string" and #secret > 0 then
      text = text:gsub(secret:gsub("%p", "%%%0"), "***")
    end
  end
  return text
end

-- tail(sprite, path, {from_start=true}) -> iterator over the file's lines as
-- they are appended; follows across truncation and re-creation (tail -F),
-- and starts again when the connection breaks. Ends when the task is
-- cancelled (use sprites.timeout or a task).
function M.tail(sprite, path, opts)
  opts = options("workflow.tail", opts, "from_start")
  local start = opts.from_start == false and "0" or "+1"
  local seen = 0
  local process, lines
  local function open()
    -- Skips what was delivered before a reconnect: line counts survive.
    process = sprite:spawn { "tail", "-n", start, "-F", path }
    lines = process:lines()
    for _ = 1, seen do
      if lines() == nil then break end
    end
  end
  return function()
    while true do
      if not process then open() end
      local ok, line = pcall(lines)
      if ok and line ~= nil then
        seen = seen + 1
        return line
      end
      if not ok and errors.is(line) and (line.kind == "cancelled" or line.kind == "timeout"
          or line.kind == "interrupted") then
        error(line, 0)
      end
      process = nil
      task.sleep(0.5)
    end
  end
end

-- jsonl(lines) -> iterator of decoded JSON values; lines that do not parse
-- are skipped (an agent's log may mix in plain text).
function M.jsonl(lines)
  local json = require "sprites.json"
  return function()
    while true do
      local line = lines()
      if line == nil then return nil end
      if line:match("^%s*[%[{]") then
        local ok, value = pcall(json.decode, line)
        if ok then return value end
      end
    end
  end
end

-- receipt(path) -> a run's record: r:add(step) appends a table (sprite, name,
-- code, ok, duration, checkpoint...), r:write() saves JSON (atomically:
-- temp file and rename) with the start and end times.
local Receipt = {}
Receipt.__index = Receipt

function M.receipt(path)
  return setmetatable({ path = path, started = os.date("!%Y-%m-%dT%H:%M:%SZ"), entries = {} }, Receipt)
end

function Receipt:add(step)
  self.entries[#self.entries + 1] = step
  return step
end

function Receipt:write()
  local json = require "sprites.json"
  local doc = { started = self.started, finished = os.date("!%Y-%m-%dT%H:%M:%SZ"),
                entries = json.array(self.entries) }
  local tmp = self.path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(json.encode(doc, { indent = 2 }), "\n")
  f:close()
  assert(os.rename(tmp, self.path))
  return self.path
end

return M
