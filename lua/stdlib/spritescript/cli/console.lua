-- spritescript.cli.console: `spritescript console [NAME]`, an interactive
-- shell in a sprite, and attaching to a session again (`spritescript
-- sessions attach ID`, which calls M.attach). docs/cli.md, "The console and
-- attach".
--
-- The shell runs in a TTY session of the sprite; this terminal is put in
-- raw mode so every key goes to it as typed (Ctrl-C included, as a byte),
-- window changes follow (SIGWINCH), and the detach key (Ctrl-\ by default,
-- as in the `sprite` CLI) leaves the session running. Only the shell's exit
-- ends the session; every other way out (detach, a dropped connection, an
-- error, a signal) leaves it running and says how to attach again. The
-- terminal is restored on every way out (spritescript.terminal also does it
-- at exit and on fatal signals).
local core = require "spritescript.core"
local terminal = require "spritescript.terminal"
local task = require "sprites.task"
local errors = require "sprites.error"
local api = require "sprites.api"
local util = require "spritescript.cli.util"

local M = {}

M.default_detach_key = "ctrl-\\"

-- "ctrl-\" -> "\28"; "ctrl-a" -> "\1"; "none" -> false; nil for a bad name.
function M.parse_detach_key(name)
  name = tostring(name):lower()
  if name == "none" then return false end
  local key = name:match("^ctrl%-(.)$") or name:match("^%^(.)$") or name:match("^c%-(.)$")
  if not key then return nil end
  if key:match("^[a-z]$") then return string.char(key:byte() - 96) end
  local specials = { ["@"] = 0, ["["] = 27, ["\\"] = 28, ["]"] = 29, ["^"] = 30, ["_"] = 31 }
  if specials[key] then return string.char(specials[key]) end
  return nil
end

local function key_label(name)
  return (name:gsub("^[cC][tT][rR][lL]%-", "Ctrl-"):gsub("^%^", "Ctrl-"))
end

-- Undoes what full-screen programs may have left on when we leave without
-- them ending (a detach, a dropped connection): the alternate screen, a
-- hidden cursor, mouse reporting, bracketed paste. Harmless when not set.
local function reset_screen_modes()
  if core.isatty(1) then
    pcall(terminal.write, "\27[?1049l\27[?25h\27[?1000l\27[?1002l\27[?1006l\27[?2004l")
  end
end

local function reattach_hint(sprite_name, session_id)
  return ("spritescript sessions attach %s -s %s"):format(session_id, sprite_name)
end

-- Waits for a terminal op; raises its error.
local function await(op, id, what)
  local value, err = task.await(op, id, what)
  if value == nil and type(err) == "table" then
    errors.raise(err.kind or "error", (err.message or what), nil, 2)
  end
  return value
end

-- Streams the session's output to this terminal: "exit", code at its end.
local function pump_output(p)
  while true do
    local event, err = task.await(p.handle:next())
    if event == nil then
      if type(err) == "table" then
        errors.raise(err.kind or "network", err.message or "reading the session's output", nil, 2)
      end
      return "exit", p.code
    end
    if event.type == "output" then
      terminal.write(event.data, event.stream == "stderr" and 2 or 1)
    elseif event.type == "exit" then
      p.code = event.code
      p.handle:close()
      return "exit", event.code
    end
  end
end

-- Sends what is typed to the session, up to the detach key: "detach", or
-- "eof" when stdin ends.
local function pump_input(p, detach_byte, tty)
  while true do
    local data = await(terminal.read(4096))
    if data == nil then
      if not tty then pcall(p.close_stdin, p) end
      return "eof"
    end
    local at = detach_byte and data:find(detach_byte, 1, true)
    if at then
      if at > 1 then p:write(data:sub(1, at - 1)) end
      return "detach"
    end
    p:write(data)
  end
end

-- Keeps the session's window the size of this terminal. Watching starts
-- before the size is read, so a change in between is not lost.
local function follow_window(p, cols, rows)
  while true do
    local op, id = terminal.resized()
    local c, r = terminal.size()
    if c and (c ~= cols or r ~= rows) then
      cols, rows = c, r
      p:resize(cols, rows)
    end
    task.await(op, id, "window change")
  end
end

-- Connects this terminal to process p (a TTY shell, or any session) until
-- the command exits or the user detaches. Returns the exit code to use.
-- opts: sprite_name, detach_key (name), detach_byte (or false), tty, cols, rows
local function interact(p, opts)
  local session_id = p.session_id
  local hint = reattach_hint(opts.sprite_name, session_id)
  -- From here on only the command's exit ends the session: leaving any
  -- other way keeps it, to attach again.
  p.release()

  if opts.tty then
    local raw_ok, why = terminal.raw()
    if not raw_ok then
      p.handle:close()
      util.usage(why)
    end
    task.defer(terminal.restore)  -- also when something below fails unexpectedly
  end

  local children = {}
  local ok, result, code = xpcall(function()
    local output = task.spawn(pump_output, p)
    local input = task.spawn(pump_input, p, opts.detach_byte, opts.tty)
    children = { output, input }
    if opts.tty then
      children[3] = task.spawn(follow_window, p, opts.cols, opts.rows)
    end
    local waiting = { output, input }
    while true do
      local t, t_ok, what, exit_code = task.wait_any(waiting)
      if not t_ok then error(what, 0) end
      if t == output then return "exit", exit_code end
      if what == "detach" or opts.tty then return "detach" end
      waiting = { output }  -- stdin ended: the command may still write
    end
  end, errors.handler)

  -- Stop the helpers (they wait on the connection and the terminal).
  for _, t in ipairs(children) do t:cancel() end
  task.shield(function()
    for _, t in ipairs(children) do t:pwait() end
  end)

  local detached = not ok or result == "detach"
  if detached then
    -- A clean close if the connection is still fine; dropping it does the
    -- same for the session.
    local closed = pcall(task.timeout, 2, function() p:detach() end)
    if not closed then p.handle:close() end
    if opts.tty then reset_screen_modes() end
  end
  terminal.restore()

  if not ok then
    local err = errors.wrap(result)
    if err.kind == "interrupted" or err.kind == "cancelled" then
      io.stderr:write(("\nleft session %s on %s running; attach again with: %s\n")
        :format(session_id, opts.sprite_name, hint))
    else
      io.stderr:write(("\nthe connection to session %s on %s ended; if it still runs, attach with: %s\n")
        :format(session_id, opts.sprite_name, hint))
    end
    error(result, 0)
  end
  if result == "detach" then
    io.stderr:write(("\ndetached from session %s on %s (it keeps running); attach again with: %s\n")
      :format(session_id, opts.sprite_name, hint))
    return 0
  end
  return code or 0
end

local console_spec = {
  usage = "console [NAME] [-s NAME] [--dir DIR] [--env K=V]... [--detach-key ctrl-X|none] [-- CMD...]",
  short = { s = "sprite", d = "dir", e = "env" },
  options = { sprite = "string", dir = "string", env = "list", detach_key = "string" },
  max = 1,
}

local function detach_byte_of(name)
  local byte = M.parse_detach_key(name)
  if byte == nil then
    util.usage(("--detach-key wants ctrl-A..ctrl-Z, ctrl-\\, ctrl-], ctrl-^, ctrl-_ or none, not '%s'")
      :format(name))
  end
  return byte
end

local function announce(sprite_name, session_id, key_name, detach_byte, tty)
  local key = "no detach key"
  if not tty then  -- the terminal stays as it is: Ctrl-C is ours
    key = "Ctrl-C detaches (the session keeps running), Ctrl-D ends its input"
  elseif detach_byte then
    key = key_label(key_name) .. " detaches (the session keeps running)"
  end
  io.stderr:write(util.colour("dim", ("Connected to %s, session %s. %s.")
    :format(sprite_name, session_id, key), 2) .. "\n")
end

local function need_terminal(command)
  if not core.isatty(0) then
    util.usage(command .. " needs a terminal on stdin; to run a command without one, use"
      .. " 'spritescript exec -s NAME -- CMD'")
  end
end

-- The shell to start (sprites have bash; `-- CMD` picks another).
local default_shell = { "bash", "-l" }

-- spritescript console [NAME] [-- CMD...]
function M.console(argv)
  local opts, positional, command = util.parse(argv, console_spec)
  if opts.sprite and positional[1] and opts.sprite ~= positional[1] then
    util.usage("the sprite is named twice ('" .. positional[1] .. "' and -s " .. opts.sprite .. ")")
  end
  local name = util.sprite_name(opts.sprite or positional[1])
  local env = util.parse_env(opts.env)
  local key_name = opts.detach_key or M.default_detach_key
  local detach_byte = detach_byte_of(key_name)
  if command and #command == 0 then util.usage("nothing after '--': name a command, or leave '--' out") end
  need_terminal("console")

  env.TERM = env.TERM or os.getenv("TERM") or "xterm-256color"
  local colorterm = os.getenv("COLORTERM")
  if colorterm and colorterm ~= "" and env.COLORTERM == nil then env.COLORTERM = colorterm end
  local cols, rows = terminal.size()
  cols, rows = cols or 80, rows or 24

  local s = api.sprite(name)
  local p = s:spawn(command or default_shell, { tty = true, cols = cols, rows = rows, env = env, dir = opts.dir })
  announce(name, p.session_id, key_name, detach_byte, true)
  return interact(p, { sprite_name = name, detach_key = key_name, detach_byte = detach_byte,
                       tty = true, cols = cols, rows = rows })
end

-- M.attach(sprite_name, session_id, {detach_key=}) -> exit code: attaches
-- this terminal to a session (the output it kept, then what comes) until
-- the command exits (its code) or the detach key (0).
function M.attach(sprite_name, session_id, opts)
  opts = opts or {}
  local key_name = opts.detach_key or M.default_detach_key
  local detach_byte = detach_byte_of(key_name)
  need_terminal("attach")
  local s = api.sprite(sprite_name)
  local p = s:attach(session_id)
  local tty = p.handle:info().tty
  if p.session_id == nil or p.session_id == "" then p.session_id = tostring(session_id) end
  announce(sprite_name, p.session_id, key_name, detach_byte, tty)
  return interact(p, { sprite_name = sprite_name, detach_key = key_name, detach_byte = detach_byte,
                       tty = tty })
end

return M
