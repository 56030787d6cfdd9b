-- spritescript.pretty: values as the REPL shows them.
--
--   pretty.format(value, {depth=, width=, items=, colour=}) -> string
--
-- Tables print as Lua constructors: the array part first, then the other
-- keys sorted; on one line when it fits in `width` (default 80), indented
-- otherwise; past `items` (default 100) entries, `... (N more)`. Deeper than `depth` (default 4) a table is `{...}`; a table met
-- again inside itself is `<cycle>`; a value with __tostring (a sprite, an
-- error) prints as its tostring. With colour = true (the REPL passes it on
-- a terminal only), strings, numbers and marks are coloured.
local M = {}

local codes = { string = "32", number = "36", boolean = "35", ["nil"] = "35", mark = "2",
                func = "33", key = "0" }

local keywords = {}
for word in ([[and break do else elseif end false for function goto if in local nil not
  or repeat return then true until while]]):gmatch("%a+") do keywords[word] = true end

local function is_identifier(key)
  return type(key) == "string" and key:match("^[%a_][%w_]*$") ~= nil and not keywords[key]
end

local escapes = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- A string as a Lua literal, control bytes escaped, UTF-8 kept.
function M.quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\%d"):format(c:byte())
  end) .. '"'
end

local function function_name(f)
  local info = debug.getinfo(f, "S")
  if not info or info.what == "C" then return "<function: builtin>" end
  return ("<function %s:%d>"):format(info.short_src, info.linedefined)
end

-- Sort keys: numbers first (by value), then strings, then the rest by type.
local type_order = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (type_order[ta] or 9) < (type_order[tb] or 9) or
      ((type_order[ta] or 9) == (type_order[tb] or 9) and ta < tb) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function visible_width(text)
  return #(text:gsub("\27%[[%d;]*m", ""))
end

function M.format(value, opts)
  opts = opts or {}
  local max_depth = opts.depth or 4
  local width = opts.width or 80
  local colour = opts.colour
  local max_items = opts.items or 100

  local function paint(kind, text)
    if not colour or not codes[kind] or codes[kind] == "0" then return text end
    return "\27[" .. codes[kind] .. "m" .. text .. "\27[0m"
  end

  local function scalar(v)
    local t = type(v)
    if t == "string" then return paint("string", M.quote(v)) end
    if t == "number" then
      if v ~= v then return paint("number", "0/0") end
      if v == math.huge then return paint("number", "math.huge") end
      if v == -math.huge then return paint("number", "-math.huge") end
      return paint("number", tostring(v))
    end
    if t == "boolean" or t == "nil" then return paint(t, tostring(v)) end
    if t == "function" then return paint("func", function_name(v)) end
    return paint("mark", "<" .. tostring(v) .. ">")
  end

  local on_path = {}

  -- Returns the text of v; `indent` is where its lines start.
  local function render(v, depth, indent)
    if type(v) ~= "table" then return scalar(v) end
    local mt = getmetatable(v)
    if type(mt) == "table" and rawget(mt, "__tostring") then
      local ok, text = pcall(tostring, v)
      if ok then return paint("mark", tostring(text)) end
    end
    if on_path[v] then return paint("mark", "<cycle>") end
    if next(v) == nil then return "{}" end
    if depth >= max_depth then return paint("mark", "{...}") end
    on_path[v] = true

    local items, n_array = {}, 0
    local n = #v
    local shown = math.min(n, max_items)
    for i = 1, shown do items[#items + 1] = render(v[i], depth + 1, indent .. "  ") end
    n_array = #items
    local keys = {}
    for k in pairs(v) do
      if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then
        keys[#keys + 1] = k
      end
    end
    table.sort(keys, key_less)
    for i, k in ipairs(keys) do
      if shown + i > max_items then break end
      local key_text
      if is_identifier(k) then
        key_text = paint("key", k)
      else
        key_text = "[" .. render(k, max_depth, indent) .. "]"
      end
      items[#items + 1] = key_text .. " = " .. render(v[k], depth + 1, indent .. "  ")
    end
    local hidden = n + #keys - #items
    if hidden > 0 then items[#items + 1] = paint("mark", ("... (%d more)"):format(hidden)) end
    on_path[v] = nil

    local one_line = "{ " .. table.concat(items, ", ") .. " }"
    if visible_width(one_line) + #indent <= width and not one_line:find("\n", 1, true) then
      return one_line
    end
    -- Several lines: the array part filled up to the width, each other
    -- field on a line of its own.
    local lines, current = {}, nil
    local inner = indent .. "  "
    for i, item in ipairs(items) do
      local fills = i <= n_array and not item:find("\n", 1, true)
      if fills and current and #inner + visible_width(current) + 2 + visible_width(item) <= width then
        current = current .. ", " .. item
      else
        if current then lines[#lines + 1] = current end
        current = item
      end
      if not fills then
        lines[#lines + 1] = current
        current = nil
      end
    end
    if current then lines[#lines + 1] = current end
    return "{\n" .. inner .. table.concat(lines, ",\n" .. inner) .. "\n" .. indent .. "}"
  end

  return render(value, 0, "")
end

return M
