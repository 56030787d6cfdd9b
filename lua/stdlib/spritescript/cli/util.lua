-- spritescript.cli.util: what every built-in command shares: argument
-- parsing, the default sprite (.sprite), human output (aligned tables,
-- relative times, colour on a terminal only) and --json output.
local core = require "spritescript.core"
local errors = require "sprites.error"
local json = require "sprites.json"

local M = {}

-- A usage error: one line, exit 2 (spritescript.cli prints it).
function M.usage(message)
  error(errors.new("usage", message), 0)
end

---------------------------------------------------------------------------
-- Arguments
---------------------------------------------------------------------------

-- M.parse(argv, spec) -> opts, positional, after_dashdash
--   spec.flags   = {json = true, force = true}          --json, --force
--   spec.options = {prefix = "string", label = "list"}  --prefix X, --label A --label B
--   spec.short   = {s = "sprite", d = "dir"}            -s X is --sprite X
--   spec.min, spec.max: how many positional arguments (max nil: any)
--   spec.usage: the usage line shown with errors ("ls [--prefix P] [--json]")
--   spec.sprite = true: also -s NAME / --sprite NAME (see M.sprite)
-- `--name=value` works for options. `--` ends the options; what follows is
-- returned as after_dashdash (nil when there was no `--`). A list option
-- gives a table (possibly empty); a flag true or nil.
function M.parse(argv, spec)
  local flags, options, short = spec.flags or {}, spec.options or {}, spec.short or {}
  if spec.sprite then
    options.sprite, short.s = "string", "sprite"
    spec.options, spec.short = options, short
  end
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if a == "--help" or (a == "-h" and not short.h) then M.help(spec) end
  end
  local opts, positional, rest = {}, {}, nil
  for name, kind in pairs(options) do
    if kind == "list" then opts[name] = {} end
  end
  local function fail(message)
    M.usage(message .. (spec.usage and ("; usage: spritescript " .. spec.usage) or ""))
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      rest = {}
      for j = i + 1, #argv do rest[#rest + 1] = argv[j] end
      break
    end
    local name, value
    if a:sub(1, 2) == "--" and #a > 2 then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name = a:sub(3) end
    elseif a:sub(1, 1) == "-" and #a == 2 and short[a:sub(2)] then
      name = short[a:sub(2)]
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      fail("unknown option '" .. a .. "'")
    end
    if name then
      local key = name:gsub("-", "_")
      if flags[key] then
        if value then fail("--" .. name .. " takes no value") end
        opts[key] = true
      elseif options[key] then
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then fail("--" .. name .. " needs a value") end
        end
        if options[key] == "list" then
          table.insert(opts[key], value)
        elseif options[key] == "number" then
          local n = tonumber(value)
          if not n then fail("--" .. name .. " wants a number, not '" .. value .. "'") end
          opts[key] = n
        else
          opts[key] = value
        end
      else
        fail("unknown option '--" .. name .. "'")
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  if spec.min and #positional < spec.min then fail("missing arguments") end
  if spec.max and #positional > spec.max then
    fail("unexpected argument '" .. positional[spec.max + 1] .. "'")
  end
  return opts, positional, rest
end

-- `COMMAND --help`: the usage line and the options on stdout, exit 0.
function M.help(spec)
  local out = { "usage: spritescript " .. (spec.usage or "...") }
  local names = {}
  for name in pairs(spec.flags or {}) do names[#names + 1] = "--" .. name:gsub("_", "-") end
  for name, kind in pairs(spec.options or {}) do
    names[#names + 1] = "--" .. name:gsub("_", "-") .. " " ..
      (kind == "list" and "VALUE (repeatable)" or kind == "number" and "N" or "VALUE")
  end
  table.sort(names)
  local shorts = {}
  for letter, name in pairs(spec.short or {}) do
    shorts[#shorts + 1] = "-" .. letter .. " is --" .. name:gsub("_", "-")
  end
  table.sort(shorts)
  if #names > 0 then out[#out + 1] = "options: " .. table.concat(names, ", ") end
  if #shorts > 0 then out[#out + 1] = "short: " .. table.concat(shorts, ", ") end
  out[#out + 1] = "more: docs/cli.md"
  io.stdout:write(table.concat(out, "\n"), "\n")
  error(errors.new("usage", "help shown", { help = true }), 0)
end

-- A command with subcommands (`fs ls`, `services logs`...): runs
-- subcommands[argv[1]] with the rest; with no subcommand (or an option
-- first) `default` with all of argv; `help` (or --help first) prints
-- `help_text` when given. An unknown one is a usage error naming `usage`.
function M.subcommand(argv, subcommands, default, usage, help_text)
  local sub = argv[1]
  if help_text and (sub == "help" or sub == "--help" or sub == "-h") then
    io.stdout:write(help_text)
    return 0
  end
  if sub == nil or sub:sub(1, 1) == "-" then return subcommands[default](argv) end
  local fn = subcommands[sub]
  if not fn then M.usage("unknown subcommand '" .. sub .. "'; usage: spritescript " .. usage) end
  return fn({ select(2, unpack(argv)) })
end

-- "K=V" strings -> {K = V}; a usage error for one without "=" or an empty key.
function M.parse_env(list)
  local env = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then M.usage("--env wants KEY=VALUE, not '" .. kv .. "'") end
    env[k] = v
  end
  return env
end

---------------------------------------------------------------------------
-- The default sprite: -s NAME, else the nearest .sprite file
---------------------------------------------------------------------------

-- The nearest `.sprite` above the current directory: its path and the
-- name in it, or nil.
function M.find_dot_sprite(start)
  local dir = start or core.getcwd()
  while dir and dir ~= "" do
    local path = (dir == "/" and "" or dir) .. "/.sprite"
    if core.stat(path) == "file" then
      local f = io.open(path, "r")
      if f then
        local text = f:read("*a") or ""
        f:close()
        -- The sprite CLI writes JSON ({"sprite":"name",...}); ours writes the name.
        local name = text:match('"sprite"%s*:%s*"([^"]+)"') or text:match("^%s*([%w%-]+)%s*$")
        if name then return path, name end
      end
    end
    if dir == "/" then break end
    dir = dir:match("^(.*)/[^/]*$")
    if dir == "" then dir = "/" end
  end
  return nil
end

-- The sprite handle for parsed options (`-s NAME`, else as M.sprite_name).
function M.sprite(opts)
  return require("sprites").sprite(M.sprite_name(opts.sprite))
end

-- The user's config file (~/.config/spritescript/config.lua, a Lua file
-- returning a table; docs/cli.md), read once; {} when there is none. The
-- host reads api_url, token and token_command itself (src/host/runtime.cpp).
local config
function M.config()
  if config then return config end
  config = {}
  local base = os.getenv("XDG_CONFIG_HOME")
  if not base or base == "" then base = (os.getenv("HOME") or "") .. "/.config" end
  local chunk = loadfile(base .. "/spritescript/config.lua")
  if chunk then
    setfenv(chunk, {})
    local ok, value = pcall(chunk)
    if ok and type(value) == "table" then config = value end
  end
  return config
end

-- The sprite a command acts on: `given` (from -s or an argument), else the
-- nearest .sprite, else the config file's default_sprite; a usage error
-- when there is none of them.
function M.sprite_name(given)
  if given and given ~= "" then return given end
  local _, name = M.find_dot_sprite()
  if name then return name end
  local default = M.config().default_sprite
  if type(default) == "string" and default ~= "" then return default end
  M.usage("no sprite given: pass -s NAME, or run 'spritescript use NAME' in this directory")
end

---------------------------------------------------------------------------
-- Output
---------------------------------------------------------------------------

local function use_colour(fd)
  local no_colour = os.getenv("NO_COLOR")
  return (no_colour == nil or no_colour == "") and core.isatty(fd or 1) and os.getenv("TERM") ~= "dumb"
end

local codes = { bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34",
                magenta = "35", cyan = "36" }

-- `text` in colour `name` on a terminal (NO_COLOR honoured), else as it is.
function M.colour(name, text, fd)
  text = tostring(text)
  if not use_colour(fd) or not codes[name] then return text end
  return "\27[" .. codes[name] .. "m" .. text .. "\27[0m"
end

function M.is_terminal(fd)
  return core.isatty(fd or 1)
end

local function display_width(text)
  local plain = tostring(text):gsub("\27%[[%d;]*m", "")
  local _, n = plain:gsub("[^\128-\191]", "")  -- count UTF-8 lead bytes
  return n
end

-- Prints rows as aligned columns: headers = {"NAME", "STATUS", ...}, rows =
-- arrays of strings (colour codes allowed). Headers are dim on a terminal.
function M.print_table(headers, rows, out)
  out = out or io.stdout
  local widths = {}
  for i, h in ipairs(headers) do widths[i] = display_width(h) end
  for _, row in ipairs(rows) do
    for i = 1, #headers do widths[i] = math.max(widths[i], display_width(row[i] or "")) end
  end
  local function line(cells, style)
    local parts = {}
    for i = 1, #headers do
      local cell = tostring(cells[i] or "")
      if i < #headers then cell = cell .. string.rep(" ", widths[i] - display_width(cell)) end
      parts[i] = style and M.colour(style, cell) or cell
    end
    out:write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
  end
  line(headers, "dim")
  for _, row in ipairs(rows) do line(row) end
end

-- Seconds since the epoch of an RFC 3339 time (UTC or with an offset).
function M.parse_time(text)
  if type(text) ~= "string" then return nil end
  local y, mo, d, h, mi, s, rest = text:match("^(%d+)-(%d+)-(%d+)[Tt ](%d+):(%d+):(%d+)(.*)$")
  if not y then return nil end
  local t = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                      hour = tonumber(h), min = tonumber(mi), sec = tonumber(s), isdst = false })
  -- os.time reads the table as local time: shift it to UTC.
  local now = os.time()
  local utc_offset = os.difftime(now, os.time(os.date("!*t", now)))
  t = t + utc_offset
  local sign, oh, om = rest:match("([+-])(%d%d):?(%d%d)$")
  if sign then
    local offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    t = sign == "+" and t - offset or t + offset
  end
  return t
end

-- "just now", "42s ago", "5m ago", "3h ago", "2d ago", or the date.
function M.relative_time(text, now)
  local t = M.parse_time(text)
  if not t then return text or "" end
  local ago = (now or os.time()) - t
  if ago < 0 then ago = 0 end
  if ago < 5 then return "just now" end
  if ago < 60 then return ("%ds ago"):format(ago) end
  if ago < 3600 then return ("%dm ago"):format(math.floor(ago / 60)) end
  if ago < 86400 then return ("%dh ago"):format(math.floor(ago / 3600)) end
  if ago < 30 * 86400 then return ("%dd ago"):format(math.floor(ago / 86400)) end
  return os.date("!%Y-%m-%d", t)
end

-- One JSON document on stdout (arrays stay arrays, even empty ones).
function M.print_json(value)
  io.stdout:write(json.encode(value), "\n")
end

-- A progress line on a terminal's stderr for work of unknown length
-- (create, checkpoint, restore: the API reports steps, not a percentage): a
-- spinner, the label, the time so far and the latest step, redrawn in
-- place; nothing at all when stderr is not a terminal.
--   local p = util.progress("checkpoint of web")
--   ... on_progress = function(ev) p:update(ev.message) end ...
--   p:done()            -- clears the line (the caller prints the result)
function M.progress(label)
  local p = { update = function() end, done = function() end }
  if not core.isatty(2) then return p end
  local sprites = require "sprites"
  local started, message, frame = core.now(), "", 0
  local spinner = { "|", "/", "-", "\\" }
  local function draw()
    frame = frame % #spinner + 1
    local line = ("%s %s  %.1fs  %s"):format(spinner[frame], label, core.now() - started, message)
    if #line > 78 then line = line:sub(1, 75) .. "..." end
    io.stderr:write("\r\27[K", M.colour("dim", line, 2))
    io.stderr:flush()
  end
  local ticker = sprites.spawn(function()
    while true do
      draw()
      sprites.sleep(0.1)
    end
  end)
  function p:update(text)
    message = tostring(text or "")
    draw()
  end
  function p:done()
    ticker:cancel()
    io.stderr:write("\r\27[K")
    io.stderr:flush()
  end
  return p
end

-- fn(p) with a progress line (M.progress) that is cleared however fn
-- ends, before an error is reported; returns fn's results.
function M.with_progress(label, fn)
  local p = M.progress(label)
  local r = { pcall(fn, p) }
  p:done()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2)
end

-- Asks a yes/no question on a terminal; false when stdin is not one.
function M.confirm(question)
  if not core.isatty(0) then return false end
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("*l")
  return answer ~= nil and answer:match("^%s*[yY]") ~= nil
end

return M
