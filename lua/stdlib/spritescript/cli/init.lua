-- spritescript.cli: the built-in commands (`spritescript ls`, `create`,
-- `exec`, `console`, `repl`...), written in Lua on the sprites API
-- (docs/cli.md). src/host/main.cpp sends every command it does not know
-- itself here; main(command, ...) returns the process exit code.
--
-- Each command lives in a module of its group, which exports one function
-- per command: function(argv) -> exit code (or nothing for 0). Failures are
-- errors: a usage error (util.usage) exits 2 with one line, an API error
-- with its kind's code (docs/errors.md), never a stack trace unless -v.
local errors = require "sprites.error"

local M = {}

-- command -> module; the order of `spritescript help` lists them.
M.commands = {
  { "ls", "spritescript.cli.sprites", "list sprites" },
  { "create", "spritescript.cli.sprites", "create a sprite" },
  { "destroy", "spritescript.cli.sprites", "delete a sprite" },
  { "use", "spritescript.cli.sprites", "set this directory's default sprite (.sprite)" },
  { "exec", "spritescript.cli.exec", "run a command in a sprite" },
  { "console", "spritescript.cli.console", "an interactive shell in a sprite" },
  { "sessions", "spritescript.cli.sessions", "list, attach to and kill sessions" },
  { "checkpoint", "spritescript.cli.checkpoints", "create, list and inspect checkpoints" },
  { "restore", "spritescript.cli.checkpoints", "restore a checkpoint" },
  { "policy", "spritescript.cli.policy", "show or change the network policy" },
  { "proxy", "spritescript.cli.proxy", "forward local ports to a sprite" },
  { "url", "spritescript.cli.proxy", "show a sprite's URL, set its auth" },
  { "fs", "spritescript.cli.fs", "list, get, put and remove files" },
  { "services", "spritescript.cli.services", "manage a sprite's services" },
  { "repl", "spritescript.cli.repl", "a Lua prompt bound to a sprite" },
  { "scripts", "spritescript.cli.scripts", "list the scripts you can run" },
  { "trust", "spritescript.cli.scripts", "trust a project's script" },
  { "doctor", "spritescript.cli.doctor", "which back end and token are in use" },
}

local by_name = {}
for _, entry in ipairs(M.commands) do by_name[entry[1]] = entry end

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local previous = {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    local current = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
    end
    previous = current
  end
  return previous[#b]
end

-- The known command closest to `name`, when it is close enough to be a typo.
function M.closest(name)
  local best, best_distance
  local names = { "run", "serve", "engine", "version", "help" }
  for _, entry in ipairs(M.commands) do names[#names + 1] = entry[1] end
  for _, candidate in ipairs(names) do
    local d = distance(name, candidate)
    if not best_distance or d < best_distance then best, best_distance = candidate, d end
  end
  if best_distance and best_distance <= math.max(1, math.floor(#name / 3)) then return best end
  return nil
end

local function verbose()
  local runtime = package.loaded["spritescript.runtime"]
  return runtime and runtime.verbose
end

function M.main(command, ...)
  local entry = by_name[command]
  if not entry then
    local guess = M.closest(command)
    io.stderr:write("spritescript: unknown command '", command, "'",
                    guess and ("; did you mean '" .. guess .. "'?") or "",
                    " (see 'spritescript help')\n")
    return errors.exit_codes.usage
  end
  local argv = { ... }
  local ok, result = xpcall(function()
    local module = require(entry[2])
    return module[command](argv)
  end, errors.handler)
  if ok then return result or 0 end
  local err = errors.wrap(result)
  if err.help then return 0 end  -- COMMAND --help (util.help)
  if err.kind == "interrupted" or err.kind == "cancelled" then error(err, 0) end
  local message = err.message or tostring(err)
  io.stderr:write("spritescript ", command, ": ", message, "\n")
  if verbose() and err.traceback and err.traceback ~= "" then
    io.stderr:write(err.traceback, "\n")
  end
  return errors.exit_code(err)
end

return M
