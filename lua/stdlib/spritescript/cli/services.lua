-- spritescript.cli.services: `spritescript services`, the commands a
-- sprite keeps running (docs/cli.md, "Files and services"), on the services
-- API (lua/stdlib/sprites/services.lua):
--   services [ls] [--json]
--   services create NAME --cmd CMD [--arg A]... [--env K=V]... [--dir D]
--                        [--http-port P] [--needs S]... [--wait SECONDS]
--   services create NAME [options] -- CMD [ARGS...]
--   services start|stop|restart|rm NAME
--   services logs NAME [-n LINES] [--follow] [--json]
local errors = require "sprites.error"
local json = require "sprites.json"
local util = require "spritescript.cli.util"

local M = {}

local USAGE = "services [ls|create|start|stop|restart|rm|logs] ... [-s NAME] (see 'spritescript services help')"
local HELP = [[
spritescript services: the commands a sprite keeps running (restarted after a crash)
  services [ls] [--json]                          list them with their state
  services create NAME --cmd CMD [--arg A]... [--env K=V]... [--dir D]
           [--http-port P] [--needs S]... [--wait SECONDS]
  services create NAME [options] -- CMD [ARGS...] the same, the command after --
  services start|restart NAME [--wait SECONDS]    start (again), showing its first events
  services stop NAME [--timeout SECONDS]          TERM, then KILL after the timeout (10 s)
  services rm NAME                                stop and delete
  services logs NAME [-n LINES] [-f] [--json]     its output and events (-f: follow)
every subcommand takes -s NAME (else the sprite named in .sprite)
]]

local function parse(rest, usage, spec)
  spec.sprite, spec.usage = true, usage
  return util.parse(rest, spec)
end

local status_colours = { running = "green", starting = "yellow", stopping = "yellow", failed = "red",
                         stopped = "dim" }

---------------------------------------------------------------------------
-- Events: output to stdout and stderr as the service wrote it, the rest as
-- one line each on stderr ("web: exited with code 1").
---------------------------------------------------------------------------

local function with_newline(text)
  text = tostring(text or "")
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  return text
end

local function show_event(service, event)
  local kind, message = event.type, event.message
  if kind == "stdout" then
    io.stdout:write(with_newline(message))
    io.stdout:flush()
  elseif kind == "stderr" then
    io.stderr:write(with_newline(message))
  elseif kind ~= "complete" then
    local line = service .. ": " .. tostring(kind)
    if kind == "exit" and event.exit_code then
      line = ("%s: exited with code %s"):format(service, tostring(event.exit_code))
    elseif message and message ~= "" then
      line = line .. ": " .. tostring(message)
    end
    io.stderr:write(util.colour(kind == "error" and "red" or "dim", line, 2), "\n")
  end
end

local function json_event(event)
  util.print_json(event)
  io.stdout:flush()
end

-- The service as JSON: empty lists and maps keep their shape.
local function service_json(svc)
  svc.args = json.array(svc.args or {})
  svc.needs = json.array(svc.needs or {})
  svc.env = json.object(svc.env or {})
  return svc
end

-- One line about where a service stands; exit 1 when it is not running.
local function report_state(s, name)
  local svc = s:service(name)
  local state = svc and svc.state or {}
  local status = state.status or "unknown"
  local line = name .. ": " .. util.colour(status_colours[status] or "dim", status)
  if state.pid then line = line .. " (pid " .. tostring(state.pid) .. ")" end
  if state.error and state.error ~= "" then line = line .. ": " .. state.error end
  io.stderr:write(line, "\n")
  if status == "running" or status == "starting" then return 0 end
  return 1
end

---------------------------------------------------------------------------
-- Subcommands
---------------------------------------------------------------------------

local function ls(rest)
  local opts = parse(rest, "services [ls] [-s NAME] [--json]", { flags = { json = true }, max = 0 })
  local s = util.sprite(opts)
  local all = s:services()
  table.sort(all, function(a, b) return a.name < b.name end)
  if opts.json then
    for i, svc in ipairs(all) do all[i] = service_json(svc) end
    util.print_json(json.array(all))
    return 0
  end
  if #all == 0 then
    io.stderr:write("no services on ", s.name, " (create one: spritescript services create NAME -- CMD...)\n")
    return 0
  end
  local rows = {}
  for i, svc in ipairs(all) do
    local state = svc.state or {}
    local status = state.status or "?"
    local command = svc.cmd
    for _, a in ipairs(svc.args or {}) do command = command .. " " .. a end
    rows[i] = {
      svc.name, util.colour(status_colours[status] or "dim", status),
      state.pid and tostring(state.pid) or "-",
      tostring(state.restart_count or 0),
      (state.started_at and state.started_at ~= "") and util.relative_time(state.started_at) or "-",
      svc.http_port and tostring(svc.http_port) or "-",
      command,
    }
  end
  util.print_table({ "NAME", "STATUS", "PID", "RESTARTS", "STARTED", "HTTP", "COMMAND" }, rows)
  return 0
end

local function create(rest)
  local usage = "services create NAME (--cmd CMD [--arg A]... | -- CMD [ARGS...]) [--env K=V]... [--dir D] "
                .. "[--http-port P] [--needs S]... [--wait SECONDS] [-s NAME]"
  local opts, args, command = parse(rest, usage, {
    options = { cmd = "string", arg = "list", env = "list", dir = "string", http_port = "number",
                needs = "list", wait = "number" },
    min = 1, max = 1,
  })
  local name = args[1]
  local cmd, cmd_args = opts.cmd, opts.arg
  if command and #command > 0 then
    if cmd then util.usage("give the command with --cmd or after --, not both") end
    cmd = command[1]
    cmd_args = {}
    for i = 2, #command do cmd_args[#cmd_args + 1] = command[i] end
  end
  if not cmd or cmd == "" then util.usage("no command; usage: spritescript " .. usage) end
  local port = opts.http_port
  if port and (port % 1 ~= 0 or port < 1 or port > 65535) then
    util.usage(("--http-port is a port from 1 to 65535, not %s"):format(tostring(port)))
  end
  if opts.wait and opts.wait < 0 then util.usage("--wait is a number of seconds (0 or more)") end
  local env = util.parse_env(opts.env)
  local s = util.sprite(opts)
  s:create_service(name, {
    cmd = cmd, args = cmd_args, env = next(env) and env or nil, dir = opts.dir,
    needs = #opts.needs > 0 and opts.needs or nil, http_port = port, duration = opts.wait or 2,
    on_event = function(e) show_event(name, e) end,
  })
  return report_state(s, name)
end

local function lifecycle(verb)
  return function(rest)
    local key = verb == "stop" and "timeout" or "wait"
    local opts, args = parse(rest, ("services %s NAME [--%s SECONDS] [-s NAME]"):format(verb, key), {
      options = { [key] = "number" }, min = 1, max = 1,
    })
    local s = util.sprite(opts)
    local name = args[1]
    local on_event = function(e) show_event(name, e) end
    if verb == "stop" then
      s:stop_service(name, { timeout = opts.timeout, on_event = on_event })
      report_state(s, name)
      return 0
    end
    local call = verb == "start" and s.start_service or s.restart_service
    call(s, name, { duration = opts.wait or 2, on_event = on_event })
    return report_state(s, name)
  end
end

local function rm(rest)
  local opts, args = parse(rest, "services rm NAME... [-s NAME]", { min = 1 })
  local s = util.sprite(opts)
  for _, name in ipairs(args) do s:delete_service(name) end
  return 0
end

-- Follows in rounds of an hour (the server streams for a given duration);
-- Ctrl-C ends it (exit 130).
local FOLLOW_ROUND = 3600

local function logs(rest)
  local opts, args = parse(rest, "services logs NAME [-n LINES] [-f|--follow] [--json] [-s NAME]", {
    flags = { follow = true, json = true }, options = { lines = "number" },
    short = { f = "follow", n = "lines" }, min = 1, max = 1,
  })
  if opts.lines and (opts.lines < 0 or opts.lines % 1 ~= 0) then
    util.usage("-n is a count of events (0 or more)")
  end
  local s = util.sprite(opts)
  local name = args[1]
  if not s:service(name) then
    error(errors.new("not_found", ("%s has no service '%s'"):format(s.name, name)), 0)
  end
  local on_event = opts.json and json_event or function(e) show_event(name, e) end
  local filtered = function(e)
    if e.type ~= "complete" then on_event(e) end
  end
  s:service_logs(name, { lines = opts.lines, duration = opts.follow and FOLLOW_ROUND or nil, on_event = filtered })
  while opts.follow do
    s:service_logs(name, { lines = 0, duration = FOLLOW_ROUND, on_event = filtered })
  end
  return 0
end

local subcommands = {
  ls = ls, list = ls, create = create, rm = rm, delete = rm, logs = logs,
  start = lifecycle("start"), stop = lifecycle("stop"), restart = lifecycle("restart"),
}

function M.services(argv)
  return util.subcommand(argv, subcommands, "ls", USAGE, HELP)
end

return M
