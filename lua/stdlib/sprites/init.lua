-- sprites: the module scripts use (also the global `sprites`).
--
-- This issue's slice: tasks, time, errors and JSON. The Sprites API (create,
-- exec, checkpoints, ...) joins it as the client lands; docs/lua-api.md is
-- the reference.
local task = require "sprites.task"

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

  json = require "sprites.json",
  error = require "sprites.error",
}

return sprites
