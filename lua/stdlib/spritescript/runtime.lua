-- spritescript.runtime: boots the Lua side of the host and runs a script
-- (or -e code) as the main task. src/host/runtime.cpp loads this chunk first
-- and calls M.run with the command line.
local core = package.loaded["spritescript.core"]

-- Until the real require is installed: preloads and built-ins only.
local function boot_require(name)
  local loaded = package.loaded[name]
  if loaded ~= nil then return loaded end
  local chunk, err = package.preload[name], nil  -- LuaJIT's table.new, string.buffer
  if not chunk then chunk, err = core.builtin(name) end
  if not chunk then error(err or ("boot: no built-in module " .. name), 2) end
  local value = chunk(name)
  if value == nil then value = true end
  package.loaded[name] = value
  return value
end
require = boot_require

local errors = require "sprites.error"
local task = require "sprites.task"
local loader = require "spritescript.loader"
require = loader.require

-- The host owns the coroutine library: waits inside user coroutines reach
-- the scheduler (sprites.task, "The coroutine library").
for name, fn in pairs(task.coroutine) do coroutine[name] = fn end

local INTERRUPTED = errors.new("interrupted", "by Ctrl-C", { shared = true })
core.set_interrupt_error(INTERRUPTED)

sprites = require "sprites"

local M = {}
package.loaded["spritescript.runtime"] = M

local verbose = false

local function report(prefix, err)
  err = errors.wrap(err)
  local line = tostring(err)
  if err.kind ~= "error" and err.kind ~= "interrupted" then
    local at = errors.location(err)
    if at then line = line .. " (at " .. at .. ")" end
  end
  io.stderr:write(prefix, line, "\n")
  if verbose then
    if err.traceback and err.traceback ~= "" then io.stderr:write(err.traceback, "\n") end
    if err.spawn_chain then
      for i, site in ipairs(err.spawn_chain) do
        io.stderr:write(i == 1 and "task spawned at " or "  by a task spawned at ", site or "?", "\n")
      end
    end
  end
end

-- M.run{file=, code=, module=, args=, verbose=, trust=} -> process exit code
function M.run(opts)
  verbose = opts.verbose
  M.verbose, M.trust = opts.verbose, opts.trust
  local args = opts.args or {}
  local chunk, err, site
  if opts.module then
    -- A built-in command: its module's main(...) returns the exit code.
    site = opts.module
    chunk = function(...) return require(opts.module).main(...) end
  elseif opts.code then
    site = "(command line)"
    chunk, err = loadstring(opts.code, "=(command line)")
  else
    -- A file, or a script NAME from the script directories; a project's
    -- scripts only once trusted; typed parameters from the header
    -- (spritescript.scripts, docs/cli.md "Scripts as team tools").
    local script, exit_code = require("spritescript.scripts").prepare(opts.file, args, opts)
    if not script then return exit_code end
    opts.file, site = script.path, script.path
    chunk = script.chunk
    if script.params then
      -- `params` and `...` are the parsed parameters; `arg` keeps the raw words.
      params = script.params
      chunk = function() return script.chunk(script.params) end
    end
    loader.set_script_dir(script.path:match("^(.*)/[^/]*$") or ".")
  end
  if not chunk then
    io.stderr:write("spritescript: ", err, "\n")
    return errors.exit_codes.syntax
  end

  arg = { [-1] = "spritescript", [0] = opts.file or opts.module or "-e" }
  for i = 1, #args do arg[i] = args[i] end

  task.on_interrupt = function()
    io.stderr:write("\nspritescript: interrupted; cancelling tasks (Ctrl-C again to exit at once)\n")
    task.cancel_all(INTERRUPTED)
  end

  local root = task.run(chunk, site, unpack(args, 1, #args))
  io.stdout:flush()

  local code = 0
  if opts.module and root.ok and type(root.results[2]) == "number" then code = root.results[2] end
  if root.state ~= "done" then
    report("spritescript: ", task.deadlock_error)
    code = errors.exit_codes.deadlock
  elseif not root.ok then
    report("spritescript: ", root.err)
    code = errors.exit_code(root.err)
  elseif task.deadlock_error then
    report("spritescript: ", task.deadlock_error)
    code = errors.exit_codes.deadlock
  end
  for _, failed in ipairs(task.take_unobserved()) do
    report("spritescript: warning: a task nobody waited for failed: ", failed.err)
    if code == 0 then code = errors.exit_codes.error end
  end
  return code
end

return M
