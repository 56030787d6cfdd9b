-- spritescript.cli.sessions: sessions [ls|attach ID|kill ID] (docs/cli.md
-- "Running commands"). Attaching is the console's work
-- (spritescript.cli.console).
local json = require "sprites.json"
local util = require "spritescript.cli.util"

local M = {}

local usage = "sessions [ls] [-s NAME] [--json] | sessions attach ID [-s NAME] | sessions kill ID [-s NAME] [--signal SIG] [--timeout SECONDS]"

-- A session's start time, whether the server sent RFC 3339 or a number.
local function created_text(created)
  if type(created) == "number" or (type(created) == "string" and created:match("^%d+$")) then
    local seconds = tonumber(created)
    if seconds > 1e11 then seconds = seconds / 1000 end  -- milliseconds
    return util.relative_time(os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(seconds)))
  end
  return util.relative_time(created)
end

local function ls(argv)
  local opts = util.parse(argv, {
    flags = { json = true }, options = { sprite = "string" }, short = { s = "sprite" }, max = 0,
    usage = "sessions [ls] [-s NAME] [--json]",
  })
  local s = util.sprite(opts)
  local list = s:sessions()
  if opts.json then
    util.print_json(json.array(list))
    return 0
  end
  if #list == 0 then
    io.stderr:write("no sessions on ", s.name, "\n")
    return 0
  end
  local rows = {}
  for _, x in ipairs(list) do
    rows[#rows + 1] = {
      x.id, x.command or "", x.workdir or "", created_text(x.created),
      x.is_active and util.colour("green", "attached") or "detached", x.tty and "tty" or "",
    }
  end
  util.print_table({ "ID", "COMMAND", "DIR", "CREATED", "STATE", "TTY" }, rows)
  return 0
end

local function attach(argv)
  local opts, args = util.parse(argv, {
    options = { sprite = "string" }, short = { s = "sprite" }, min = 1, max = 1,
    usage = "sessions attach ID [-s NAME]",
  })
  local name = util.sprite_name(opts.sprite)
  return require("spritescript.cli.console").attach(name, args[1])
end

local function kill(argv)
  local opts, args = util.parse(argv, {
    options = { sprite = "string", signal = "string", timeout = "number" },
    short = { s = "sprite" }, min = 1, max = 1,
    usage = "sessions kill ID [-s NAME] [--signal SIG] [--timeout SECONDS]",
  })
  local s = util.sprite(opts)
  local id = args[1]
  -- The engine answers an unknown id with no events: say so instead of
  -- pretending it was killed.
  local known = false
  for _, x in ipairs(s:sessions()) do known = known or tostring(x.id) == id end
  if not known then
    error(require("sprites.error").new("not_found", "no session " .. id .. " on " .. s.name
      .. " (see 'spritescript sessions -s " .. s.name .. "')"), 0)
  end
  local verbose = util.is_terminal(2)
  s:kill_session(id, {
    signal = opts.signal, timeout = opts.timeout,
    on_event = function(e)
      if verbose and e.message and e.message ~= "" then
        io.stderr:write(util.colour("dim", e.type .. ": " .. e.message, 2), "\n")
      end
    end,
  })
  io.stdout:write("killed session ", id, " on ", s.name, "\n")
  return 0
end

local subcommands = { ls = ls, list = ls, attach = attach, kill = kill }

function M.sessions(argv)
  return util.subcommand(argv, subcommands, "ls", usage)
end

return M
