-- Writes docs/lua-reference.md and meta/sprites.lua (LuaLS type stubs) from
-- docs/api/sprites.lua, the one description of the Lua API.
--
--   build/spritescript run tools/gen_lua_docs.lua           write both files
--   build/spritescript run tools/gen_lua_docs.lua --check   fail when they are stale
--
-- The output depends on the data only (its order, no timestamps), so
-- --check is stable. tests/lua/docs_test.lua loads this file as a module
-- (loadfile(path)("--module")) and runs the check.
local M = {}

M.COMMAND = "build/spritescript run tools/gen_lua_docs.lua"
M.OUTPUTS = { "docs/lua-reference.md", "meta/sprites.lua" }

local insert, concat = table.insert, table.concat

-- The repository root: two levels above this file.
function M.root_of(script)
  local dir = (script or ""):match("^(.*)/[^/]*$") or "."
  local root = dir:match("^(.*)/[^/]*$")
  if root == nil then return dir == "tools" and "." or dir .. "/.." end
  if root == "" then return "/" end
  return root
end

function M.load(root)
  local chunk = assert(loadfile(root .. "/docs/api/sprites.lua"))
  return chunk()
end

---------------------------------------------------------------------------
-- Checks of the data itself
---------------------------------------------------------------------------
local KINDS = { module = true, class = true, type = true }

-- -> a list of problems (empty when the data is well formed)
function M.validate(data)
  local problems = {}
  local function bad(fmt, ...) insert(problems, fmt:format(...)) end
  local known_kinds = {}
  local ok_errors, errors = pcall(require, "sprites.error")
  if ok_errors then
    for kind in pairs(errors.exit_codes) do known_kinds[kind] = true end
  end
  local groups = {}
  for _, g in ipairs(data.error_groups or {}) do groups[g.name] = true end
  local seen = {}
  for _, s in ipairs(data.sections) do
    if type(s.name) ~= "string" then bad("a section has no name") end
    if not KINDS[s.kind] then bad("%s: kind must be module, class or type", tostring(s.name)) end
    if seen[s.name] then bad("%s: described twice", s.name) end
    seen[s.name] = true
    if type(s.summary) ~= "string" then bad("%s: no summary", s.name) end
    for _, f in ipairs(s.fields or {}) do
      if not (f.name and f.type and f.description) then bad("%s: a field lacks name, type or description", s.name) end
    end
    local names = {}
    for _, fn in ipairs(s.functions or {}) do
      local where = s.name .. "." .. tostring(fn.name)
      if names[fn.name] then bad("%s: described twice", where) end
      names[fn.name] = true
      if type(fn.summary) ~= "string" then bad("%s: no summary", where) end
      if fn.summary and fn.summary:find("\n") then bad("%s: the summary must be one line", where) end
      if type(fn.params) ~= "table" then bad("%s: no params list", where) end
      if type(fn.returns) ~= "table" then bad("%s: no returns list", where) end
      if type(fn.errors) ~= "table" then bad("%s: no errors list", where) end
      for _, p in ipairs(fn.params or {}) do
        if not (p.name and p.type and p.description) then bad("%s: a parameter lacks name, type or description", where) end
      end
      for _, r in ipairs(fn.returns or {}) do
        if not (r.type and r.description) then bad("%s: a return value lacks type or description", where) end
      end
      for _, e in ipairs(fn.errors or {}) do
        if not (groups[e] or known_kinds[e] or e:find(" ")) then
          bad("%s: unknown error kind '%s'", where, e)
        end
      end
      if fn.options then
        if type(fn.options.class) ~= "string" then bad("%s: the options table has no class name", where) end
        local found = false
        for _, p in ipairs(fn.params or {}) do
          if p.name == fn.options.param then found = true end
        end
        if not found then bad("%s: options belong to no parameter ('%s')", where, tostring(fn.options.param)) end
        for _, o in ipairs(fn.options) do
          if not (o.name and o.type and o.description) then bad("%s: an option lacks name, type or description", where) end
        end
      end
    end
  end
  return problems
end

-- Every options class once, in the order they first appear; the same name
-- must always describe the same options.
local function option_classes(data)
  local list, by_name = {}, {}
  for _, s in ipairs(data.sections) do
    for _, fn in ipairs(s.functions or {}) do
      local o = fn.options
      if o then
        local prev = by_name[o.class]
        if prev == nil then
          by_name[o.class] = o
          insert(list, o)
        elseif prev ~= o then
          local a, b = {}, {}
          for i, x in ipairs(prev) do a[i] = x.name .. ":" .. x.type end
          for i, x in ipairs(o) do b[i] = x.name .. ":" .. x.type end
          if concat(a, ",") ~= concat(b, ",") then
            error(("%s is described twice, differently"):format(o.class), 0)
          end
        end
      end
    end
  end
  return list
end

---------------------------------------------------------------------------
-- Markdown
---------------------------------------------------------------------------
local function one_line(text) return (text:gsub("%s*\n%s*", " ")) end

-- GitHub's heading anchors: lower case, punctuation dropped, spaces as "-".
local function anchor(heading)
  return (heading:lower():gsub("[^%w%s_-]", ""):gsub("%s", "-"))
end

local function cell(text) return (one_line(text):gsub("|", "\\|")) end

local function code(text) return "`" .. text .. "`" end

-- The name a function is called by: sprites.spawn, s:run.
local function call_name(s, fn)
  if s.kind == "class" then return (s.var or "self") .. ":" .. fn.name end
  return s.name .. "." .. fn.name
end

-- Class and table sections say what they are (and so never share an
-- anchor with a function: sprites.Event the class, sprites.event()).
local SUFFIX = { module = "", class = " (class)", type = " (table)" }
local function section_heading(s) return s.name .. SUFFIX[s.kind] end

local function signature(s, fn)
  local parts = {}
  for _, p in ipairs(fn.params) do insert(parts, p.optional and ("[" .. p.name .. "]") or p.name) end
  return call_name(s, fn) .. "(" .. concat(parts, ", ") .. ")"
end

function M.markdown(data)
  local out = {}
  local function w(...) for i = 1, select("#", ...) do insert(out, (select(i, ...))) end end

  -- Type names that have a section (or are an options class) link to it.
  local targets = {}
  for _, s in ipairs(data.sections) do targets[s.name] = "#" .. anchor(section_heading(s)) end
  local function type_text(t)
    local esc = t:gsub("|", "\\|")
    local linked = targets[t] or targets[t:match("^(.-)%[%]$") or ""]
      or targets[t:match("^(.-)|nil$") or ""]
    if linked then return "[" .. code(esc) .. "](" .. linked .. ")" end
    return code(esc)
  end

  local groups = {}
  for _, g in ipairs(data.error_groups or {}) do groups[g.name] = g end
  local function error_text(e)
    if groups[e] then return "[" .. e .. "](#error-groups)" end
    if e:find(" ") then return e end
    return code(e)
  end

  w("# ", data.title, "\n\n",
    "<!-- Generated by tools/gen_lua_docs.lua from docs/api/sprites.lua: edit that file, then run\n",
    "     ", M.COMMAND, " -->\n\n",
    "Every function and method scripts can call, generated from [api/sprites.lua](api/sprites.lua). ",
    "The guide with the concepts is [lua-api.md](lua-api.md) (tasks: [tasks.md](tasks.md), errors: ",
    "[errors.md](errors.md)); editors get the same information from the LuaLS stubs in ",
    "[meta/](../meta/README.md).\n\n",
    "Optional parameters are in brackets. Types are written as LuaLS writes them (`string[]`: an array ",
    "of strings; `A|B`: either; `fun(x: T): R`: a function).\n\n")

  w("## Contents\n\n")
  for _, s in ipairs(data.sections) do
    if s.kind ~= "type" then w("* [", s.name, "](", targets[s.name], "): ", one_line(s.summary), "\n") end
  end
  w("* Tables the API returns:")
  local first = true
  for _, s in ipairs(data.sections) do
    if s.kind == "type" then
      w(first and " " or ", ", "[", s.name, "](", targets[s.name], ")")
      first = false
    end
  end
  w("\n* [Error groups](#error-groups)\n\n")

  local anchors = {}
  local function heading(level, text)
    local a = anchor(text)
    if anchors[a] then error(("two headings have the anchor #%s"):format(a), 0) end
    anchors[a] = true
    w(level, " ", text, "\n\n")
    return a
  end

  local function fields_table(fields, what)
    w("| ", what, " | type | description |\n|---|---|---|\n")
    for _, f in ipairs(fields) do
      w("| ", code(f.name), " | ", type_text(f.type), f.optional and " (optional)" or "", " | ",
        cell(f.description), " |\n")
    end
    w("\n")
  end

  for _, s in ipairs(data.sections) do
    heading("##", section_heading(s))
    w(one_line(s.summary), "\n\n")
    if s.description then w(s.description, "\n\n") end
    if s.fields and #s.fields > 0 then fields_table(s.fields, "field") end

    local fns = s.functions or {}
    if #fns > 0 then
      -- An index of the functions, by group.
      local order, by_group = {}, {}
      for _, fn in ipairs(fns) do
        local g = fn.group or ""
        if not by_group[g] then by_group[g] = {}; insert(order, g) end
        insert(by_group[g], "[" .. code(fn.name) .. "](#" .. anchor(call_name(s, fn)) .. ")")
      end
      for _, g in ipairs(order) do
        w(g ~= "" and ("*" .. g .. "*: ") or "", concat(by_group[g], ", "), "\n\n")
      end
    end

    for _, fn in ipairs(fns) do
      heading("###", call_name(s, fn))
      local rets = {}
      for _, r in ipairs(fn.returns) do insert(rets, r.name or r.type) end
      w(code(signature(s, fn)), #rets > 0 and (" → " .. code(concat(rets, ", "))) or "", "\n\n")
      w(fn.summary, "\n\n")
      if fn.description then w(fn.description, "\n\n") end
      if #fn.params > 0 then
        w("| parameter | type | description |\n|---|---|---|\n")
        for _, p in ipairs(fn.params) do
          w("| ", code(p.name), " | ", type_text(p.type), p.optional and " (optional)" or "", " | ",
            cell(p.description), " |\n")
        end
        w("\n")
      end
      if fn.options then
        w("Options (", code(fn.options.class), "):\n\n")
        w("| option | type | description |\n|---|---|---|\n")
        for _, o in ipairs(fn.options) do
          w("| ", code(o.name), " | ", type_text(o.type), " | ", cell(o.description), " |\n")
        end
        w("\n")
      end
      if #fn.returns > 0 then
        w("Returns:\n\n")
        for _, r in ipairs(fn.returns) do
          w("* ", r.name and (code(r.name) .. " ") or "", type_text(r.type), ": ", one_line(r.description), "\n")
        end
        w("\n")
      end
      if #fn.errors > 0 then
        local list = {}
        for _, e in ipairs(fn.errors) do insert(list, error_text(e)) end
        w("Errors: ", concat(list, ", "), "\n\n")
      end
      if fn.overloads then
        for _, o in ipairs(fn.overloads) do w("Also: ", code(o), "\n\n") end
      end
      if fn.example then w("```lua\n", fn.example, "\n```\n\n") end
    end
  end

  heading("##", "Error groups")
  w("Kinds of error many calls share; [errors.md](errors.md) has the exit code of each.\n\n")
  w("| group | kinds | when |\n|---|---|---|\n")
  for _, g in ipairs(data.error_groups or {}) do
    local kinds = {}
    for _, k in ipairs(g.kinds) do insert(kinds, code(k)) end
    w("| ", g.name, " | ", concat(kinds, ", "), " | ", cell(g.summary), " |\n")
  end
  local text = concat(out)
  return (text:gsub("\n\n+$", "\n"))
end

---------------------------------------------------------------------------
-- LuaLS stubs
---------------------------------------------------------------------------
-- Text for a --- comment: markdown links to other docs become plain text.
local function comment(text)
  return one_line(text):gsub("%[([^%]]+)%]%(([^)]+)%)", "%1 (docs/%2)")
end

function M.meta(data)
  local out = {}
  local function w(...) for i = 1, select("#", ...) do insert(out, (select(i, ...))) end end

  w("---@meta sprites\n",
    "-- LuaLS type stubs for spritescript's `sprites` module (see meta/README.md).\n",
    "-- Generated by tools/gen_lua_docs.lua from docs/api/sprites.lua: edit that file, then run\n",
    "-- ", M.COMMAND, "\n")

  local modules = {}
  for _, s in ipairs(data.sections) do
    if s.kind == "module" then modules[s.name] = true end
  end
  local locals = {}

  local function field_lines(fields)
    for _, f in ipairs(fields or {}) do
      w("---@field ", f.name, f.optional and "? " or " ", f.type, " ", comment(f.description), "\n")
    end
  end

  local function function_stub(s, fn, owner)
    w("\n---", comment(fn.summary), "\n")
    if fn.description then w("---\n---", comment(fn.description), "\n") end
    local names = {}
    for _, p in ipairs(fn.params) do
      insert(names, p.name)
      if p.name == "..." then
        w("---@param ... ", p.type, " ", comment(p.description), "\n")
      else
        w("---@param ", p.name, p.optional and "? " or " ", p.type, " ", comment(p.description), "\n")
      end
    end
    for _, r in ipairs(fn.returns) do
      w("---@return ", r.type, r.name and (" " .. r.name) or "", " # ", comment(r.description), "\n")
    end
    for _, o in ipairs(fn.overloads or {}) do w("---@overload ", o, "\n") end
    local sep = s.kind == "class" and ":" or "."
    w("function ", owner, sep, fn.name, "(", concat(names, ", "), ") end\n")
  end

  for _, s in ipairs(data.sections) do
    w("\n", ("-"):rep(75), "\n-- ", s.name, "\n", ("-"):rep(75), "\n\n")
    if s.kind == "module" then
      w("---", comment(s.summary), "\n")
      w(s.name, " = {}\n")
      for _, f in ipairs(s.fields or {}) do
        if not modules[s.name .. "." .. f.name] then
          w("\n---", comment(f.description), "\n---@type ", f.type, "\n", s.name, ".", f.name, " = nil\n")
        end
      end
      for _, fn in ipairs(s.functions or {}) do function_stub(s, fn, s.name) end
    else
      w("---", comment(s.summary), "\n---@class ", s.name, "\n")
      field_lines(s.fields)
      if s.kind == "class" then
        local name = s.name:match("([%w_]+)$")
        if locals[name] then error(("two classes end in %s"):format(name), 0) end
        locals[name] = true
        w("local ", name, " = {}\n")
        for _, fn in ipairs(s.functions or {}) do function_stub(s, fn, name) end
      end
    end
  end

  w("\n", ("-"):rep(75), "\n-- Option tables\n", ("-"):rep(75), "\n")
  for _, o in ipairs(option_classes(data)) do
    w("\n---@class ", o.class, "\n")
    for _, f in ipairs(o) do
      w("---@field ", f.name, "? ", f.type, " ", comment(f.description), "\n")
    end
  end
  w("\nreturn sprites\n")
  return concat(out)
end

---------------------------------------------------------------------------
-- Writing and checking
---------------------------------------------------------------------------
-- -> { [path] = text } for every output, or raises naming the problems.
function M.render(root)
  local data = M.load(root)
  local problems = M.validate(data)
  if #problems > 0 then
    error("docs/api/sprites.lua: " .. concat(problems, "; "), 0)
  end
  return { ["docs/lua-reference.md"] = M.markdown(data), ["meta/sprites.lua"] = M.meta(data) }
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- -> true, or false and one line naming the stale file and the fix.
function M.check(root)
  local rendered = M.render(root)
  for _, rel in ipairs(M.OUTPUTS) do
    if read(root .. "/" .. rel) ~= rendered[rel] then
      return false, ("%s is stale (not generated from docs/api/sprites.lua as it is): run %s"):format(rel, M.COMMAND)
    end
  end
  return true
end

function M.write(root)
  local rendered = M.render(root)
  for _, rel in ipairs(M.OUTPUTS) do
    local path = root .. "/" .. rel
    if read(path) ~= rendered[rel] then
      os.execute(("mkdir -p '%s'"):format((path:match("^(.*)/[^/]*$"))))
      local f = assert(io.open(path, "wb"))
      f:write(rendered[rel])
      f:close()
      print("wrote " .. rel)
    end
  end
end

local args = { ... }
if args[1] == "--module" then return M end

local root = M.root_of(arg and arg[0])
if args[1] == "--check" then
  local ok, message = M.check(root)
  if not ok then
    io.stderr:write(message, "\n")
    os.exit(1)
  end
elseif args[1] == nil then
  M.write(root)
else
  io.stderr:write("usage: ", M.COMMAND, " [--check]\n")
  os.exit(2)
end
