-- spritescript.loader: require() written in Lua, so that a module's top
-- level can wait like any other code (the C require of LuaJIT cannot yield).
--
-- Search order (docs/modules.md):
--   1. package.loaded, package.preload
--   2. built-in modules compiled into the binary (sprites, sprites.json, ...)
--   3. the running script's own directory
--   4. .spritescript/ in the current directory, then in each parent
--   5. the user's config dir: $XDG_CONFIG_HOME/spritescript/lua
--      (default ~/.config/spritescript/lua)
--   6. each directory in $SPRITESCRIPT_PATH (colon-separated)
-- In each directory NAME "a.b" is looked up as a/b.lua, then a/b/init.lua.
local core = require "spritescript.core"
local errors = require "sprites.error"
local task = require "sprites.task"

local M = {}

local script_dir = nil
local dirs_cache = nil
local loading = {}  -- module name -> { task = loader task, done = event, err = error }

-- Where the running script lives (nil for -e code and the REPL).
function M.set_script_dir(dir)
  script_dir = dir
  dirs_cache = nil
end

local function parent_of(dir)
  return dir:match("^(.*)/[^/]*$")
end

-- The directories searched after the built-ins, in order.
function M.search_dirs()
  if dirs_cache then return dirs_cache end
  local dirs = {}
  if script_dir then dirs[#dirs + 1] = script_dir end
  local dir = core.getcwd()
  while dir do
    local candidate = (dir == "" and "" or dir) .. "/.spritescript"
    if core.stat(candidate) == "dir" then dirs[#dirs + 1] = candidate end
    if dir == "" then break end
    dir = parent_of(dir)
  end
  local config = os.getenv("XDG_CONFIG_HOME")
  if not config or config == "" then
    local home = os.getenv("HOME")
    config = home and (home .. "/.config")
  end
  if config then dirs[#dirs + 1] = config .. "/spritescript/lua" end
  for entry in (os.getenv("SPRITESCRIPT_PATH") or ""):gmatch("[^:]+") do
    dirs[#dirs + 1] = entry
  end
  dirs_cache = dirs
  return dirs
end

-- M.find(name) -> loader function, where. Raises not_found listing every
-- place tried, or syntax when the module does not compile.
function M.find(name)
  local preload = package.preload[name]
  if preload then return preload, ":preload:" end
  local chunk, err = core.builtin(name)
  if chunk then return chunk, "built-in" end
  if err then errors.raise("syntax", err, { module = name }, 3) end

  local rel = name:gsub("%.", "/")
  local tried = { "  no field package.preload['" .. name .. "']", "  no built-in module '" .. name .. "'" }
  for _, dir in ipairs(M.search_dirs()) do
    for _, suffix in ipairs({ ".lua", "/init.lua" }) do
      local path = dir .. "/" .. rel .. suffix
      if core.stat(path) == "file" then
        local fn, syntax = loadfile(path)
        if not fn then errors.raise("syntax", syntax, { module = name }, 3) end
        return fn, path
      end
      tried[#tried + 1] = "  no file '" .. path .. "'"
    end
  end
  errors.raise("not_found", "module '" .. name .. "' not found:\n" .. table.concat(tried, "\n"),
               { module = name }, 3)
end

function M.require(name)
  if type(name) ~= "string" then
    errors.raise("usage", "require: module name must be a string, got " .. type(name), nil, 2)
  end
  local value = package.loaded[name]
  if value ~= nil then return value end

  local busy = loading[name]
  if busy then
    if busy.task == task.current() then
      errors.raise("error", "require: module '" .. name .. "' requires itself (a require cycle)", nil, 2)
    end
    busy.done:wait()  -- another task is running the module's top level
    if busy.err then error(busy.err, 0) end
    return package.loaded[name]
  end

  local fn, where = M.find(name)
  local entry = { task = task.current(), done = task.event() }
  loading[name] = entry
  local ok, result = xpcall(fn, errors.handler, name, where)
  loading[name] = nil
  if ok then
    if result == nil then result = package.loaded[name] end
    if result == nil then result = true end
    package.loaded[name] = result
  else
    entry.err = result
  end
  entry.done:set()
  if not ok then error(result, 0) end
  return result
end

return M
