-- spritescript.cli.exec: exec (docs/cli.md "Running commands").
--
-- Streams the command's stdout and stderr to ours as the pieces come,
-- forwards our stdin when it is not a terminal, and exits with the remote
-- exit code. --tty on a terminal is the console's (spritescript.cli.console):
-- raw mode, the window size, the detach key.
local core = require "spritescript.core"
local errors = require "sprites.error"
local task = require "sprites.task"
local terminal = require "spritescript.terminal"
local util = require "spritescript.cli.util"

local M = {}

-- Copies our stdin into the process (spritescript.terminal reads it as ops,
-- so output keeps streaming meanwhile), then closes its stdin. A process
-- that ended (or stopped reading) ends the copy quietly: its exit code
-- says the rest.
local function forward_stdin(p, finished)
  -- A regular file never makes a read wait (and epoll refuses it): plain
  -- reads, a piece at a time.
  local from_file = core.stat("/proc/self/fd/0") == "file"
  local ok, err = pcall(function()
    while true do
      local data
      if from_file then
        data = io.stdin:read(65536)
      else
        data = task.await(terminal.read(65536))
      end
      if data == nil then
        if finished.yes then return end
        -- A read error ends the input as end of file does. (/dev/null as
        -- stdin gives one: epoll refuses it, and the wait fails at once.)
        break
      end
      p:write(data)
    end
    p:close_stdin()
  end)
  if not ok then
    local e = errors.wrap(err)
    if e.kind == "cancelled" or e.kind == "interrupted" then error(err, 0) end
  end
end

local spec = {
  flags = { tty = true },
  options = { sprite = "string", dir = "string", env = "list" },
  short = { s = "sprite" },
  usage = "exec [-s NAME] [--dir D] [--env K=V]... [--tty] -- CMD...",
}

-- The argv to run: the words as given; one word with spaces or shell
-- characters runs through `bash -lc` (exec -- 'make && ls | wc -l').
local function command_of(words)
  if #words == 1 and words[1]:find("[%s|&;<>()$`*?~]") then return words[1] end
  return words
end

function M.exec(argv)
  local parsed, opts, positional, after = pcall(util.parse, argv, spec)
  if not parsed then
    local err = errors.wrap(opts)
    local dashdash = false
    for _, a in ipairs(argv) do dashdash = dashdash or a == "--" end
    if not dashdash and err.kind == "usage" and err.message:find("unknown option", 1, true) then
      -- `exec ls -la`: the command's options were read as ours.
      util.usage(err.message:gsub(";.*", "") .. "; put the command after '--': spritescript exec [-s NAME] -- CMD...")
    end
    error(opts, 0)
  end
  local words = after or positional
  if after and #positional > 0 then
    util.usage("unexpected argument '" .. positional[1] .. "' before '--'; usage: spritescript " .. spec.usage)
  end
  if #words == 0 then util.usage("no command given; usage: spritescript " .. spec.usage) end
  local env = #opts.env > 0 and util.parse_env(opts.env) or nil
  local s = util.sprite(opts)

  local terminal_in = util.is_terminal(0)
  if opts.tty and terminal_in then
    -- Interactive: the console's work (raw mode, window size, detach key).
    local command = command_of(words)
    local console_argv = { "-s", s.name }
    if opts.dir then console_argv[#console_argv + 1] = "--dir"; console_argv[#console_argv + 1] = opts.dir end
    for _, kv in ipairs(opts.env) do
      console_argv[#console_argv + 1] = "--env"
      console_argv[#console_argv + 1] = kv
    end
    console_argv[#console_argv + 1] = "--"
    for _, word in ipairs(type(command) == "string" and { "bash", "-lc", command } or command) do
      console_argv[#console_argv + 1] = word
    end
    return require("spritescript.cli.console").console(console_argv)
  end

  local spawn_opts = { dir = opts.dir, env = env }
  if opts.tty then
    spawn_opts.tty = true
    spawn_opts.cols, spawn_opts.rows = terminal.size()
    -- What a terminal program needs to draw, as the sprite CLI passes it.
    spawn_opts.env = env or {}
    for _, name in ipairs({ "TERM", "COLORTERM", "LANG", "LC_ALL" }) do
      local value = os.getenv(name)
      if value and value ~= "" and spawn_opts.env[name] == nil then spawn_opts.env[name] = value end
    end
  end

  local p = s:spawn(command_of(words), spawn_opts)
  local feeder, finished = nil, { yes = false }
  if not terminal_in then
    feeder = task.spawn(forward_stdin, p, finished)
  else
    p:close_stdin()  -- a terminal without --tty: the command reads nothing
  end

  -- Both streams as they come, in the order they come.
  local code
  while code == nil do
    local event, err = task.await(p.handle:next())
    if event == nil then
      if type(err) == "table" then
        errors.raise(err.kind or "api", err.message or "exec failed", { status = err.status }, 1)
      end
      break
    end
    if event.type == "output" then
      local out = event.stream == "stderr" and io.stderr or io.stdout
      out:write(event.data)
      out:flush()
    elseif event.type == "exit" then
      code = event.code
    end
  end
  p.code = code
  p.handle:close()
  finished.yes = true  -- the read the feeder waits in fails now: not news
  if feeder then feeder:cancel() end
  return code or 1
end

return M
