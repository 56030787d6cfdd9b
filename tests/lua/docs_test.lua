-- The API reference against the real API: every function and method a
-- script can reach is described in docs/api/sprites.lua, everything
-- described there still exists, and the files generated from it
-- (docs/lua-reference.md, meta/sprites.lua) are fresh. No engine and no
-- network: objects are made without requests.
local T = require "harness"

local function root_of(script)
  local dir = (script or ""):match("^(.*)/[^/]*$") or "."
  local root = dir:match("^(.*)/[^/]*$")
  if root == nil then return dir .. "/../.." end
  return root:match("^(.*)/[^/]*$") or "."
end
-- tests/lua/docs_test.lua: the repository is two directories up.
local root = root_of(arg[0])
local gen = assert(loadfile(root .. "/tools/gen_lua_docs.lua"))("--module")
local data = gen.load(root)

local api = require "sprites.api"

-- Each described module or class, and the table that holds its functions
-- at run time.
local function runtime_tables()
  local t = sprites.spawn(function() end)
  t:wait()
  return {
    ["sprites"] = sprites,
    ["sprites.workflow"] = sprites.workflow,
    ["sprites.json"] = sprites.json,
    ["sprites.error"] = sprites.error,
    ["sprites.Sprite"] = getmetatable(sprites.sprite("docs-test")),  -- no request
    ["sprites.Process"] = api.Process,
    ["sprites.Checkpoint"] = api.Checkpoint,
    ["sprites.Reader"] = api.Reader,
    ["sprites.Tunnel"] = api.Tunnel,
    ["sprites.Forward"] = api.Forward,
    ["sprites.Ports"] = api.Ports,
    ["sprites.Task"] = getmetatable(t),
    ["sprites.Event"] = getmetatable(sprites.event()),
    ["sprites.Receipt"] = getmetatable(sprites.workflow.receipt("/nonexistent/receipt.json")),  -- writes nothing
    ["sprites.Error"] = getmetatable(sprites.error.new("error", "x")),
  }
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

local function describe(problems, what)
  if #problems > 0 then
    error(("%d %s:\n         %s\n       (describe them in docs/api/sprites.lua, then run %s)")
      :format(#problems, what, table.concat(problems, "\n         "), gen.COMMAND), 0)
  end
end

T.test("the data is well formed", function()
  describe(gen.validate(data), "problems in docs/api/sprites.lua")
end)

T.test("the runtime objects are the ones the API hands out", function()
  local rt = runtime_tables()
  T.eq(rt["sprites.Sprite"], api.Sprite, "sprites.sprite's metatable")
  T.eq(rt["sprites.Error"], sprites.error.Error, "an error's metatable")
  T.eq(sprites.parallel, sprites.workflow.parallel, "sprites.parallel")
end)

T.test("every function and method is described", function()
  local rt = runtime_tables()
  local sections = {}
  for _, s in ipairs(data.sections) do sections[s.name] = s end
  local missing = {}
  for _, name in ipairs(sorted_keys(rt)) do
    local s, tbl = sections[name], rt[name]
    local described = {}
    for _, fn in ipairs(s and s.functions or {}) do described[fn.name] = true end
    for _, f in ipairs(s and s.fields or {}) do described[f.name] = true end
    local sep = s and s.kind == "class" and ":" or "."
    for _, key in ipairs(sorted_keys(tbl)) do
      local v = rawget(tbl, key)
      local public = not key:match("^__")
      local kind = type(v)
      -- Functions everywhere; for modules also the values they export
      -- (sprites.json.null, sprites.error.exit_codes...).
      if public and not described[key]
          and (kind == "function" or (s == nil or s.kind == "module")) then
        missing[#missing + 1] = name .. sep .. key .. (kind == "function" and "" or (" (a " .. kind .. ")"))
      end
    end
  end
  describe(missing, "functions or values scripts can reach are not described")
end)

T.test("everything described exists", function()
  local rt = runtime_tables()
  local gone = {}
  for _, s in ipairs(data.sections) do
    local tbl = rt[s.name]
    if s.kind ~= "type" and tbl == nil then
      gone[#gone + 1] = s.name .. " (docs_test.lua does not know where to find it: add it to runtime_tables)"
    elseif tbl ~= nil then
      local sep = s.kind == "class" and ":" or "."
      for _, fn in ipairs(s.functions or {}) do
        if type(tbl[fn.name]) ~= "function" then gone[#gone + 1] = s.name .. sep .. fn.name end
      end
      if s.kind == "module" then
        for _, f in ipairs(s.fields or {}) do
          if tbl[f.name] == nil then gone[#gone + 1] = s.name .. "." .. f.name end
        end
      end
    end
  end
  describe(gone, "described functions or values no longer exist")
end)

T.test("the generated reference and stubs are fresh", function()
  local ok, message = gen.check(root)
  T.ok(ok, message)
end)

T.test("the generator is deterministic", function()
  local a, b = gen.render(root), gen.render(root)
  for _, path in ipairs(gen.OUTPUTS) do T.ok(a[path] == b[path], path .. " differs between two runs") end
end)

T.done()
