-- sprites: the module scripts use (also the global `sprites`).
--
-- Tasks, time, errors, JSON and the Sprites API (sprites, commands,
-- processes, checkpoints); docs/lua-api.md is the reference.
local task = require "sprites.task"
local api = require "sprites.api"

local sprites = {
  -- tasks and time (sprites.task; docs/tasks.md)
  spawn = task.spawn,
  sleep = task.sleep,
  timeout = task.timeout,
  shield = task.shield,
  wait_any = task.wait_any,
  wait_all = task.wait_all,
  event = task.event,
  now = task.now,
  current = task.current,
  defer = task.defer,

  -- the Sprites API (sprites.api; docs/lua-api.md)
  create = api.create,
  get = api.get,
  list = api.list,
  delete = api.delete,
  sprite = api.sprite,

  json = require "sprites.json",
  error = require "sprites.error",
}

-- sprites.workflow loads on first use (it is not needed by every script).
setmetatable(sprites, {
  __index = function(t, key)
    if key == "workflow" then
      local workflow = require "sprites.workflow"
      rawset(t, key, workflow)
      return workflow
    elseif key == "parallel" then  -- sprites.parallel(items, fn, {limit=})
      return t.workflow.parallel
    end
  end,
})

return sprites
