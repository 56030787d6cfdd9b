-- sprites.workflow: the patterns people write around agents, made safe to
-- run unattended (docs/lua-api.md, "sprites.workflow").
local task = require "sprites.task"
local errors = require "sprites.error"
local api = require "sprites.api"

local M = {}

local function pack(...) return { n = select("#", ...), ... } end

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
  opts = opts or {}
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

return M
