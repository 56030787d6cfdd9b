-- spritescript.cli.doctor: which back end and which token are in use, and
-- whether it answers (docs/cli.md "Configuration and doctor"). The token
-- is never printed, only where it came from.
--
-- Where settings come from, strongest first (the client applies the same
-- order in src/host/main.cpp and src/host/runtime.cpp client_config):
-- --api-url/--token before the command, then SPRITES_API_URL (SPRITE_URL)
-- and SPRITE_TOKEN (SPRITES_TOKEN), then the config file's api_url and
-- token (or token_command), and with neither URL nor token the local
-- engine, started on first use.
local core = require "spritescript.core"
local client = require "spritescript.client"
local errors = require "sprites.error"
local api = require "sprites"
local util = require "spritescript.cli.util"

local M = {}

local function env(name)
  local v = os.getenv(name)
  if v and v:match("%S") then return v end
  return nil
end

function M.config_path()
  local xdg = env("XDG_CONFIG_HOME")
  return (xdg or ((os.getenv("HOME") or ".") .. "/.config")) .. "/spritescript/config.lua"
end

local function engine_state_dir()
  local xdg = env("XDG_DATA_HOME")
  return (xdg or ((os.getenv("HOME") or ".") .. "/.local/share")) .. "/spritescript/engine"
end

-- The config file's table, or nil and why not (absent, or its error).
local function read_config(path)
  if core.stat(path) ~= "file" then return nil, "none" end
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local ok, value = pcall(chunk)
  if not ok then return nil, tostring(value) end
  if type(value) ~= "table" then return nil, path .. " must return a table" end
  return value
end

-- Where the URL and the token come from: {url=, url_source=, token_source=}
-- (url nil: the local engine's, known once it answers).
local function sources(config)
  local out = {}
  if env("SPRITESCRIPT_API_URL_SOURCE") and env("SPRITES_API_URL") then
    out.url, out.url_source = env("SPRITES_API_URL"), "the --api-url option"
  elseif env("SPRITES_API_URL") then
    out.url, out.url_source = env("SPRITES_API_URL"), "SPRITES_API_URL"
  elseif env("SPRITE_URL") then
    out.url, out.url_source = env("SPRITE_URL"), "SPRITE_URL"
  end
  if env("SPRITESCRIPT_TOKEN_SOURCE") and env("SPRITE_TOKEN") then
    out.token_source = "the --token option"
  elseif env("SPRITE_TOKEN") then
    out.token_source = "SPRITE_TOKEN"
  elseif env("SPRITES_TOKEN") then
    out.token_source = "SPRITES_TOKEN"
  end
  if config then
    if not out.url and type(config.api_url) == "string" and config.api_url ~= "" then
      out.url, out.url_source = config.api_url, "api_url in " .. M.config_path()
    end
    if not out.token_source then
      if type(config.token) == "string" and config.token ~= "" then
        out.token_source = "token in " .. M.config_path()
      elseif type(config.token_command) == "string" and config.token_command ~= "" then
        out.token_source = "token_command in " .. M.config_path() .. " (" .. config.token_command .. ")"
      end
    end
  end
  if not out.url and out.token_source then
    out.url, out.url_source = "https://api.sprites.dev", "the default (a token without a URL)"
  end
  out.local_engine = not out.url and not out.token_source
  return out
end

-- What `spritescript version` prints, asked of this very binary.
local function version()
  local self_path = core.realpath and core.realpath("/proc/self/exe")
  if not self_path then return "spritescript (version unknown)" end
  local pipe = io.popen("'" .. self_path:gsub("'", "'\\''") .. "' version 2>/dev/null")
  local line = pipe and pipe:read("*l")
  if pipe then pipe:close() end
  return line or "spritescript (version unknown)"
end

function M.doctor(argv)
  util.parse(argv, { max = 0, usage = "doctor" })
  local function say(label, text)
    io.stdout:write(util.colour("dim", ("%-12s"):format(label)), " ", text, "\n")
  end
  local code = 0

  say("client", version())

  local path = M.config_path()
  local config, why = read_config(path)
  if config then
    say("config", path)
  elseif why == "none" then
    say("config", "no config file (" .. path .. ")")
  else
    say("config", util.colour("red", "unreadable: " .. why))
    code = errors.exit_codes.usage
  end

  local src = sources(config)
  if src.local_engine then
    say("back end", "the local engine (state dir " .. engine_state_dir() .. "), started on first use")
    say("token", "the local engine's token file (" .. engine_state_dir() .. "/token)")
  else
    say("back end", src.url .. "  (from " .. src.url_source .. ")")
    say("token", src.token_source and ("from " .. src.token_source) or
        util.colour("yellow", "none: requests are sent without a token"))
  end

  local started = core.now()
  local ok, result = pcall(api.list)
  local elapsed = math.floor((core.now() - started) * 1000 + 0.5)
  local endpoint = client.endpoint()
  if src.local_engine and endpoint ~= "" then
    say("engine", "local engine at " .. endpoint)
  end
  if ok then
    say("answers", util.colour("green", "yes") .. (" (listed %d sprite%s in %d ms)"):format(
      #result, #result == 1 and "" or "s", elapsed))
  else
    local err = errors.wrap(result)
    if err.kind == "interrupted" or err.kind == "cancelled" then error(result, 0) end
    say("answers", util.colour("red", "no: " .. (err.message or tostring(err))))
    code = errors.exit_code(err)
    if code == 0 then code = 1 end
  end

  local dot, name = util.find_dot_sprite()
  if dot then say("sprite", name .. "  (from " .. dot .. ")") end

  return code
end

return M
