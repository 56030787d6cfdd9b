-- spritescript.cli.proxy: `spritescript proxy` (local ports forwarded to a
-- sprite's, on s:forward: lua/stdlib/sprites/network.lua) and
-- `spritescript url` (the sprite's URL and its auth, on s:refresh and
-- s:update). docs/cli.md, "Network".
local sprites = require "sprites"
local errors = require "sprites.error"
local task = require "sprites.task"
local util = require "spritescript.cli.util"

local M = {}

local PROXY_USAGE = "proxy PORT|LOCAL:REMOTE... [-s NAME] [--bind ADDR]"

-- "8080" -> 8080, 8080; "3000:8080" -> 3000, 8080; "0:8080" -> any free
-- local port. nil for anything else.
local function parse_forward(text)
  local function port(p, low)
    if not p or not p:match("^%d+$") then return nil end
    local n = tonumber(p)
    if n < low or n > 65535 then return nil end
    return n
  end
  local a, b = text:match("^(%d+):(%d+)$")
  if a then
    local l, r = port(a, 0), port(b, 1)
    if l and r then return l, r end
    return nil
  end
  local p = port(text, 1)
  if p then return p, p end
  return nil
end

-- Ctrl-C is how a proxy is meant to stop: cancel quietly (the runtime's
-- handler announces an interruption) and let M.proxy say it stopped.
local function quiet_interrupts()
  local previous = task.on_interrupt
  local reason = errors.new("interrupted", "by Ctrl-C", { shared = true })
  task.on_interrupt = function() task.cancel_all(reason) end
  return function() task.on_interrupt = previous end
end

-- spritescript proxy PORT|LOCAL:REMOTE... : one forward per argument; runs
-- until Ctrl-C, then closes them and exits 130 (128 + SIGINT, as every
-- interrupted command; a proxy only ever ends that way or with an error).
function M.proxy(argv)
  local opts, specs = util.parse(argv, {
    options = { sprite = "string", bind = "string" }, short = { s = "sprite" },
    min = 1, usage = PROXY_USAGE,
  })
  local wanted = {}
  for _, text in ipairs(specs) do
    local l, r = parse_forward(text)
    if not l then
      util.usage(("bad port '%s': give PORT or LOCAL:REMOTE, ports 1-65535 (LOCAL 0: any free port)")
        :format(text))
    end
    wanted[#wanted + 1] = { local_port = l, remote_port = r }
  end
  local s = sprites.get(util.sprite_name(opts.sprite))
  local bind = opts.bind or "127.0.0.1"
  local shown_host = bind == "127.0.0.1" and "localhost" or bind
  local restore = quiet_interrupts()
  local forwards = {}
  -- Says why a connection could not reach the sprite (nothing listening
  -- there, usually), once per new failure.
  local failed = {}
  local function report_failures()
    for i, f in ipairs(forwards) do
      local stats = f:stats()
      if stats.failed > (failed[i] or 0) then
        failed[i] = stats.failed
        io.stderr:write(("proxy: a connection to %s:%d failed: %s\n"):format(
          s.name, f.remote_port, stats.last_error or "?"))
      end
    end
  end
  local ok, err = pcall(function()
    for _, w in ipairs(wanted) do
      local f = s:forward(w.remote_port, { local_port = w.local_port, host = bind })
      forwards[#forwards + 1] = f
      io.stdout:write(("%s:%d -> %s:%d\n"):format(shown_host, f.local_port, s.name, f.remote_port))
    end
    io.stdout:flush()
    if util.is_terminal(2) then
      io.stderr:write(util.colour("dim", "forwarding; Ctrl-C to stop", 2), "\n")
    end
    -- Serve, checking now and then for connections that failed.
    while true do
      task.sleep(1)
      report_failures()
    end
  end)
  report_failures()
  for _, f in ipairs(forwards) do f:close() end
  restore()
  if not ok and errors.is(err, "interrupted") then
    if util.is_terminal(2) then io.stderr:write("\n") end
    io.stderr:write("proxy: stopped\n")
    return errors.exit_codes.interrupted
  end
  if not ok then error(err, 0) end
  return 0
end

local URL_USAGE = "url [update] [-s NAME] [--auth public|sprite] [--json]"

local auth_meaning = {
  sprite = "requests need the API token as a bearer token",
  public = "anyone who has the URL can reach it",
}

-- spritescript url: the sprite's URL on stdout (alone, for `curl
-- $(spritescript url)`), its auth on stderr; --auth sets the auth first.
function M.url(argv)
  if argv[1] == "update" then table.remove(argv, 1) end  -- the sprite CLI's `url update`
  local opts = util.parse(argv, {
    flags = { json = true }, options = { sprite = "string", auth = "string" },
    short = { s = "sprite", a = "auth" }, max = 0, usage = URL_USAGE,
  })
  if opts.auth and not auth_meaning[opts.auth] then
    util.usage(("--auth is public or sprite, not '%s'"):format(opts.auth))
  end
  local s = util.sprite(opts)
  local info
  if opts.auth then
    info = s:update { url_auth = opts.auth }
  else
    info = s:refresh()
  end
  local auth = info.url_auth ~= "" and info.url_auth or "sprite"
  if opts.json then
    util.print_json({ name = s.name, url = info.url or "", auth = auth })
    return 0
  end
  io.stdout:write(info.url or "", "\n")
  io.stderr:write("auth: ", auth, auth_meaning[auth] and (" (" .. auth_meaning[auth] .. ")") or "", "\n")
  return 0
end

return M
