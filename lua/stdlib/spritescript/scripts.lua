-- spritescript.scripts: scripts as shared team tools (docs/cli.md, "Scripts
-- as team tools"). A script's header (description and typed parameters) is
-- read from its leading comments, never by running it; `spritescript run
-- NAME` finds a script by name in the script directories; a project's
-- scripts run only once trusted (real path + sha256 of the content).
--
-- The header, in the style of LuaLS annotations:
--
--   --- Deploy a branch to a sprite.
--   --- Longer help, shown by --help.
--   ---@param target sprite the sprite (default: the .sprite name)
--   ---@param branch string="main" the branch to deploy
--   ---@param level "debug"|"info"|"warn"="info" how chatty
--   ---@param retries integer=3
--   ---@param dry_run boolean print what would be done
--   ---@param tag string? an optional tag
--   ---@param ... string files (positional arguments)
--   ---@example spritescript run deploy --branch dev --dry-run
local core = require "spritescript.core"
local client = require "spritescript.client"
local json = require "sprites.json"

local M = {}

local TYPES = { string = true, number = true, integer = true, boolean = true, sprite = true }
local TYPE_LIST = "string, number, integer, boolean, sprite, or choices like a|b|c"

---------------------------------------------------------------------------
-- The header
---------------------------------------------------------------------------

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- "a|b|c" or '"a"|"b"' -> {"a", "b", "c"}, or nil when `text` is not choices.
local function parse_choices(text)
  if not text:find("|", 1, true) and not text:match("^[\"']") then return nil end
  local choices = {}
  for item in (text .. "|"):gmatch("([^|]*)|") do
    item = item:match('^"(.*)"$') or item:match("^'(.*)'$") or item
    if item == "" then return nil end
    choices[#choices + 1] = item
  end
  return choices
end

-- A value given on the command line (or as a default) as the param's type:
-- value, or nil and why not.
local function convert(param, text)
  local kind = param.type
  if param.choices then
    for _, choice in ipairs(param.choices) do
      if choice == text then return text end
    end
    return nil, "wants one of " .. table.concat(param.choices, ", ") .. ", not '" .. text .. "'"
  elseif kind == "number" or kind == "integer" then
    local n = tonumber(text)
    if not n or n ~= n then return nil, "wants a number, not '" .. text .. "'" end
    if kind == "integer" and n ~= math.floor(n) then
      return nil, "wants an integer, not '" .. text .. "'"
    end
    return n
  elseif kind == "boolean" then
    local lower = text:lower()
    if lower == "true" or lower == "yes" or lower == "1" or lower == "on" then return true end
    if lower == "false" or lower == "no" or lower == "0" or lower == "off" then return false end
    return nil, "wants true or false, not '" .. text .. "'"
  elseif kind == "sprite" then
    if not text:match("^[%w][%w%-_]*$") then
      return nil, "wants a sprite name (letters, digits, '-'), not '" .. text .. "'"
    end
    return text
  end
  return text
end

-- One `@param` line's text after the tag -> param, or nil and why not.
--   NAME TYPE[?][=DEFAULT] HELP...     (DEFAULT: a word or a "quoted string")
local function parse_param(text)
  local name, rest = text:match("^([%a_][%w_]*)%s+(.*)$")
  if not name then name, rest = text:match("^(%.%.%.)%s+(.*)$") end
  if not name then
    name = text:match("^([%a_][%w_]*)$") or text:match("^(%.%.%.)$")
    if name then return nil, "@param " .. name .. ": no type (" .. TYPE_LIST .. ")" end
    return nil, "@param wants NAME TYPE [HELP], got '" .. text .. "'"
  end
  -- The type runs to a space or '=' outside quotes.
  local i, quote = 1, nil
  while i <= #rest do
    local c = rest:sub(i, i)
    if quote then
      if c == quote then quote = nil end
    elseif c == '"' or c == "'" then
      quote = c
    elseif c:match("%s") or c == "=" then
      break
    end
    i = i + 1
  end
  local type_text = rest:sub(1, i - 1)
  rest = rest:sub(i)
  local param = { name = name, optional = false }
  if type_text:sub(-1) == "?" then
    param.optional = true
    type_text = type_text:sub(1, -2)
  end
  param.choices = parse_choices(type_text)
  if param.choices then
    param.type = "choice"
  elseif TYPES[type_text] then
    param.type = type_text
  else
    return nil, "@param " .. name .. ": unknown type '" .. type_text .. "' (" .. TYPE_LIST .. ")"
  end
  if rest:sub(1, 1) == "=" then
    local default, after = rest:match('^="([^"]*)"(.*)$')
    if not default then default, after = rest:match("^='([^']*)'(.*)$") end
    if not default then default, after = rest:match("^=(%S*)(.*)$") end
    local value, why = convert(param, default)
    if value == nil then return nil, "@param " .. name .. ": the default " .. why end
    param.default = value
    rest = after
  end
  param.help = trim(rest)
  if name == "..." then
    param.optional = true
  elseif param.type == "boolean" then
    if param.default == nil then param.default = false end
    param.optional = true
  end
  param.required = not param.optional and param.default == nil and param.type ~= "sprite"
  return param
end

-- M.parse_header(text) -> header. Only the leading comments are read: an
-- optional #! line, then lines that are blank or start with `--`.
--   header.summary      the first description line (or the first plain comment)
--   header.description  the description lines (`---` lines before/between tags)
--   header.params       array of {name, type, choices, default, optional, required, help}
--   header.rest         the `...` param (positional arguments), or nil
--   header.examples     `@example` lines
--   header.declared     true when there is a `---` description or a tag:
--                       --help then prints usage
--   header.typed        true when there is an @param: arguments are parsed
--   header.errors       array of "line N: ..." problems (bad @param lines)
function M.parse_header(text)
  local header = { description = {}, params = {}, examples = {}, errors = {},
                   declared = false, typed = false }
  local first_plain
  local number = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    number = number + 1
    line = line:gsub("\r$", "")
    if number == 1 and line:sub(1, 2) == "#!" then
      -- the shebang
    elseif line:match("^%s*$") then
      if #header.description > 0 and header.description[#header.description] ~= "" then
        header.description[#header.description + 1] = ""
      end
    elseif line:match("^%-%-") then
      local doc = line:match("^%-%-%-+%s?(.*)$")
      local tag, tag_text = line:match("^%-%-+%s*@(%w+)%s*(.*)$")
      if line:match("^%-%-%[=*%[") then
        break  -- a block comment: headers are line comments only
      elseif tag then
        header.declared = true
        tag_text = trim(tag_text)
        if tag == "param" then
          header.typed = true
          local param, why = parse_param(tag_text)
          if not param then
            header.errors[#header.errors + 1] = "line " .. number .. ": " .. why
          elseif param.name == "..." then
            header.rest = param
          else
            for _, other in ipairs(header.params) do
              if other.name == param.name then
                header.errors[#header.errors + 1] = "line " .. number .. ": @param " ..
                  param.name .. " is declared twice"
              end
            end
            header.params[#header.params + 1] = param
          end
        elseif tag == "example" or tag == "usage" then
          header.examples[#header.examples + 1] = tag_text
        end
        -- Other tags (@module, @diagnostic...) belong to other tools.
      elseif doc then
        header.declared = true
        header.description[#header.description + 1] = trim(doc)
      elseif not first_plain then
        local plain = trim(line:sub(3))
        if plain ~= "" then first_plain = plain end
      end
    else
      break
    end
  end
  while header.description[1] == "" do table.remove(header.description, 1) end
  while header.description[#header.description] == "" do table.remove(header.description) end
  header.summary = header.description[1] or first_plain or ""
  return header
end

-- The built-in scripts (scripts/examples, embedded): their paths are
-- "builtin:NAME".
local function builtin_text(path)
  local name = path:match("^builtin:(.+)$")
  return name and core.builtin_scripts()[name]
end

function M.read_file(path)
  if path:match("^builtin:") then
    local text = builtin_text(path)
    if text then return text end
    return nil, "no built-in script " .. path
  end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  if not text then return nil, path .. ": could not be read" end
  return text
end

-- The header of the script at `path` (nil, message when unreadable).
function M.header_of(path)
  local text, err = M.read_file(path)
  if not text then return nil, err end
  return M.parse_header(text)
end

---------------------------------------------------------------------------
-- Parameters
---------------------------------------------------------------------------

local function flag_of(name)
  return "--" .. name:gsub("_", "-")
end

local function placeholder(param)
  if param.choices then return table.concat(param.choices, "|") end
  return param.type:upper()
end

local function show_default(param)
  if param.default == nil then return nil end
  if type(param.default) == "string" and param.type ~= "choice" then
    return ("%q"):format(param.default)
  end
  return tostring(param.default)
end

-- The usage text `run NAME --help` prints.
function M.usage_text(header, label)
  local out = {}
  local synopsis = { "usage: spritescript run " .. label }
  for _, p in ipairs(header.params) do
    local word = p.type == "boolean" and flag_of(p.name) or (flag_of(p.name) .. " " .. placeholder(p))
    synopsis[#synopsis + 1] = p.required and word or ("[" .. word .. "]")
  end
  if header.rest then synopsis[#synopsis + 1] = "[" .. placeholder(header.rest) .. "...]" end
  out[#out + 1] = table.concat(synopsis, " ")
  if #header.description > 0 then
    out[#out + 1] = ""
    for _, line in ipairs(header.description) do out[#out + 1] = line end
  end
  local rows = {}
  for _, p in ipairs(header.params) do
    local left = p.type == "boolean" and (flag_of(p.name) .. ", --no-" .. p.name:gsub("_", "-"))
                 or (flag_of(p.name) .. " " .. placeholder(p))
    local notes = {}
    if p.help ~= "" then notes[#notes + 1] = p.help end
    if p.required then
      notes[#notes + 1] = "(required)"
    elseif p.type == "sprite" and p.default == nil then
      notes[#notes + 1] = "(default: the sprite in .sprite)"
    elseif p.type ~= "boolean" and p.default ~= nil then
      notes[#notes + 1] = "(default: " .. show_default(p) .. ")"
    elseif p.type == "boolean" and p.default == true then
      notes[#notes + 1] = "(default: on)"
    end
    rows[#rows + 1] = { left, table.concat(notes, " ") }
  end
  if header.rest then
    rows[#rows + 1] = { placeholder(header.rest) .. "...", header.rest.help }
  end
  if #rows > 0 then
    local width = 0
    for _, row in ipairs(rows) do width = math.max(width, #row[1]) end
    out[#out + 1] = ""
    out[#out + 1] = "parameters:"
    for _, row in ipairs(rows) do
      out[#out + 1] = (("  %-" .. width .. "s  %s"):format(row[1], row[2]):gsub("%s+$", ""))
    end
  end
  if #header.examples > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "examples:"
    for _, line in ipairs(header.examples) do out[#out + 1] = "  " .. line end
  end
  return table.concat(out, "\n") .. "\n"
end

-- M.parse_params(header, argv, label, opts) -> params | "help" | nil, message
-- Parses `--name value`, `--name=value`, `--flag`, `--no-flag`, `--`, and
-- positional arguments (only when `...` is declared: params[1], params[2]...).
-- opts.default_sprite(): the name a `sprite` param defaults to (.sprite).
function M.parse_params(header, argv, label, opts)
  opts = opts or {}
  local see = " (see 'spritescript run " .. label .. " --help')"
  local by_flag, params, given = {}, {}, {}
  for _, p in ipairs(header.params) do
    by_flag[p.name:gsub("_", "-")] = p
    by_flag[p.name] = p
  end
  local function positional(value)
    if not header.rest then
      return "unexpected argument '" .. value .. "'" .. see
    end
    local converted, why = convert(header.rest, value)
    if converted == nil then return "argument '" .. value .. "' " .. why .. see end
    params[#params + 1] = converted
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do
        local why = positional(argv[j])
        if why then return nil, why end
      end
      break
    elseif (a == "--help" or a == "-h") and not by_flag.help then
      return "help"
    elseif a:sub(1, 2) == "--" and #a > 2 then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local param, negated = by_flag[name], false
      if not param and name:sub(1, 3) == "no-" and by_flag[name:sub(4)] and
          by_flag[name:sub(4)].type == "boolean" and not value then
        param, negated = by_flag[name:sub(4)], true
      end
      if not param then
        local known = {}
        for _, p in ipairs(header.params) do known[#known + 1] = flag_of(p.name) end
        return nil, "unknown parameter '--" .. name .. "'" ..
          (#known > 0 and ("; known: " .. table.concat(known, ", ")) or "; it takes none") .. see
      end
      local converted
      if param.type == "boolean" and not value then
        converted = not negated
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then
            return nil, flag_of(param.name) .. " needs a value (" .. placeholder(param) .. ")" .. see
          end
        end
        local why
        converted, why = convert(param, value)
        if converted == nil then return nil, flag_of(param.name) .. " " .. why .. see end
      end
      params[param.name] = converted
      given[param.name] = true
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      return nil, "unknown option '" .. a .. "'" .. see
    else
      local why = positional(a)
      if why then return nil, why end
    end
    i = i + 1
  end
  for _, p in ipairs(header.params) do
    if not given[p.name] then
      if p.default ~= nil then
        params[p.name] = p.default
      elseif p.type == "sprite" then
        params[p.name] = opts.default_sprite and opts.default_sprite() or nil
        if params[p.name] == nil and not p.optional then
          return nil, "missing " .. flag_of(p.name) .. " SPRITE (or run 'spritescript use NAME' here)" .. see
        end
      elseif p.required then
        return nil, "missing " .. flag_of(p.name) .. " " .. placeholder(p) .. see
      end
    end
  end
  return params
end

---------------------------------------------------------------------------
-- Where scripts live
---------------------------------------------------------------------------

local function config_home()
  local config = os.getenv("XDG_CONFIG_HOME")
  if config and config ~= "" then return config end
  local home = os.getenv("HOME")
  return home and (home .. "/.config")
end

local function parent_of(dir)
  if dir == "/" then return nil end
  local parent = dir:match("^(.*)/[^/]*$")
  if parent == "" then parent = "/" end
  return parent
end

-- The script directories in lookup order: {dir=, origin=} with origin
-- "project" (.spritescript/scripts from the current directory up), "user"
-- ($XDG_CONFIG_HOME/spritescript/scripts) or "path" (ENTRY/scripts for
-- each SPRITESCRIPT_PATH entry); the built-in scripts come after them all
-- (M.list, M.find). Directories that do not exist are kept
-- (lookups name them); `exists` says which do.
function M.search_dirs(cwd)
  local dirs = {}
  local function add(dir, origin)
    dirs[#dirs + 1] = { dir = dir, origin = origin, exists = core.stat(dir) == "dir" }
  end
  local dir = cwd or core.getcwd()
  while dir do
    local candidate = (dir == "/" and "" or dir) .. "/.spritescript/scripts"
    if core.stat(candidate) == "dir" then add(candidate, "project") end
    dir = parent_of(dir)
  end
  local config = config_home()
  if config then add(config .. "/spritescript/scripts", "user") end
  for entry in (os.getenv("SPRITESCRIPT_PATH") or ""):gmatch("[^:]+") do
    add(entry:gsub("/+$", "") .. "/scripts", "path")
  end
  return dirs
end

-- The scripts of one directory: sorted array of {name=, path=}.
local function scripts_in(dir)
  local found = {}
  local tree = client.local_tree(dir)
  for _, entry in ipairs(tree or {}) do
    local name = entry.path:match("^([^/]+)%.lua$")
    if name and (entry.type == "file" or core.stat(dir .. "/" .. entry.path) == "file") then
      found[#found + 1] = { name = name, path = dir .. "/" .. entry.path }
    end
  end
  return found
end

-- Every script found, in lookup order: {name, path, origin, dir,
-- shadowed_by = path of the script of that name that runs instead}.
function M.list(cwd)
  local all, first = {}, {}
  for _, d in ipairs(M.search_dirs(cwd)) do
    if d.exists then
      for _, s in ipairs(scripts_in(d.dir)) do
        s.origin, s.dir = d.origin, d.dir
        if first[s.name] then s.shadowed_by = first[s.name].path else first[s.name] = s end
        all[#all + 1] = s
      end
    end
  end
  local names = {}
  for name in pairs(core.builtin_scripts()) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local s = { name = name, path = "builtin:" .. name, origin = "built-in" }
    if first[name] then s.shadowed_by = first[name].path else first[name] = s end
    all[#all + 1] = s
  end
  return all
end

-- M.find(name) -> {name, path, origin, dir} or nil, where it looked.
function M.find(name, cwd)
  name = name:gsub("%.lua$", "")
  local looked = {}
  for _, d in ipairs(M.search_dirs(cwd)) do
    local path = d.dir .. "/" .. name .. ".lua"
    if core.stat(path) == "file" then
      return { name = name, path = path, origin = d.origin, dir = d.dir }
    end
    looked[#looked + 1] = d.dir
  end
  if core.builtin_scripts()[name] then
    return { name = name, path = "builtin:" .. name, origin = "built-in" }
  end
  looked[#looked + 1] = "the built-in scripts"
  return nil, looked
end

-- A script name (not a path): what `run NAME` looks up.
function M.is_name(text)
  return text:match("^[%w_][%w_.%-]*$") ~= nil
end

---------------------------------------------------------------------------
-- Trust
---------------------------------------------------------------------------

-- $XDG_STATE_HOME/spritescript/trust.json (default ~/.local/state/...).
function M.trust_file()
  local state = os.getenv("XDG_STATE_HOME")
  if not state or state == "" then
    local home = os.getenv("HOME") or "."
    state = home .. "/.local/state"
  end
  return state .. "/spritescript/trust.json"
end

-- {real path -> {sha256=, trusted_at=}}; a missing or damaged file is empty.
function M.load_trust()
  local text = M.read_file(M.trust_file())
  if not text then return {} end
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" or type(doc.scripts) ~= "table" then return {} end
  return doc.scripts
end

-- Writes the store atomically (a temporary file renamed over the old one).
function M.save_trust(scripts)
  local file = M.trust_file()
  local dir = file:match("^(.*)/[^/]*$")
  local made, why = client.local_mkdir(dir)
  if not made then return nil, why end
  local tmp = ("%s.%d.%d.tmp"):format(file, os.time(), math.random(1e9))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local wrote, write_err = f:write(json.encode({ version = 1, scripts = scripts }, { sort_keys = true }), "\n")
  local closed = f:close()
  if not wrote or not closed then
    os.remove(tmp)
    return nil, tmp .. ": " .. tostring(write_err or "could not be written")
  end
  local renamed, rename_err = os.rename(tmp, file)
  if not renamed then
    os.remove(tmp)
    return nil, rename_err
  end
  return true
end

-- M.trust_status(path, text) -> "trusted" | "new" | "changed", real path, sha256
function M.trust_status(path, text)
  local real = core.realpath(path) or path
  local hash = core.sha256(text)
  local entry = M.load_trust()[real]
  if type(entry) ~= "table" then return "new", real, hash end
  if entry.sha256 == hash then return "trusted", real, hash end
  return "changed", real, hash
end

-- Records `path` as trusted with `text` (default: its current content):
-- -> real path, sha256.
function M.trust(path, text)
  if not text then
    local err
    text, err = M.read_file(path)
    if not text then return nil, err end
  end
  local real = core.realpath(path) or path
  local hash = core.sha256(text)
  local store = M.load_trust()
  store[real] = { sha256 = hash, trusted_at = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  local ok, why = M.save_trust(store)
  if not ok then return nil, why end
  return real, hash
end

-- Forgets `path` -> whether it was trusted.
function M.untrust(path)
  local real = core.realpath(path) or path
  local store = M.load_trust()
  if not store[real] then return false end
  store[real] = nil
  local ok, why = M.save_trust(store)
  if not ok then return nil, why end
  return true
end

---------------------------------------------------------------------------
-- `spritescript run FILE|NAME ARGS...`: what runtime.run needs
---------------------------------------------------------------------------

local function shell_quote(s)
  if s:match("^[%w_./%-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- M.prepare(target, args, {trust=}) -> script | nil, exit code (the one-line
-- error already written to stderr).
--   script.path, .origin, .chunk (compiled from the bytes that were
--   checked), .params (typed scripts), .call_args (the script's `...`)
function M.prepare(target, args, opts)
  local codes = require("sprites.error").exit_codes
  local function fail(code, message)
    io.stderr:write("spritescript: ", message, "\n")
    return nil, code
  end
  local kind = core.stat(target)
  local script
  if kind == "file" then
    script = { name = target:match("([^/]+)$"):gsub("%.lua$", ""), path = target, origin = "file" }
  elseif kind == "dir" then
    return fail(codes.usage, "is a directory: " .. target)
  elseif M.is_name(target) then
    local looked
    script, looked = M.find(target)
    if not script then
      return fail(codes.usage, "no such script: " .. target .. " (not a file, and no " ..
        target:gsub("%.lua$", "") .. ".lua in " .. (#looked > 0 and table.concat(looked, ", ") or "any script directory") ..
        "; see 'spritescript scripts')")
    end
  else
    return fail(codes.usage, "no such script: " .. target)
  end

  local text, read_err = M.read_file(script.path)
  if not text then return fail(codes.usage, "cannot read " .. script.path .. ": " .. tostring(read_err)) end

  local header = M.parse_header(text)
  local label = script.origin == "file" and script.path or script.name
  script.header = header
  script.call_args = args
  if #header.errors > 0 then
    return fail(codes.syntax, script.path .. ": bad header: " .. header.errors[1])
  end
  if header.typed then
    local util = require "spritescript.cli.util"
    local params, why = M.parse_params(header, args, label, {
      default_sprite = function()
        local _, name = util.find_dot_sprite()
        return name
      end,
    })
    if params == "help" then
      io.stdout:write(M.usage_text(header, label))
      return nil, 0
    end
    if not params then return fail(codes.usage, "run " .. label .. ": " .. why) end
    script.params = params
    script.call_args = { params }
  elseif header.declared and #args == 1 and (args[1] == "--help" or args[1] == "-h") then
    io.stdout:write(M.usage_text(header, label))
    return nil, 0
  end

  -- Trust is checked last: reading the header and the parameters runs
  -- nothing, and `--help` works before a script is trusted.
  if script.origin == "project" and not opts.trust then
    local status, real, hash = M.trust_status(script.path, text)
    if status ~= "trusted" then
      local util = require "spritescript.cli.util"
      local why = status == "new" and "is not trusted yet" or "changed since it was trusted"
      if core.isatty(0) and core.isatty(2) then
        io.stderr:write("spritescript: the project script ", real, " ", why, "\n",
                        "  sha256 ", hash, "\n",
                        "  read it first: it runs with your token and your files\n")
        if not util.confirm("trust this script?") then
          return fail(codes.usage, "not trusted, not run: " .. real)
        end
        -- The bytes read (and hashed) above are the ones trusted and run.
        local ok, save_err = M.trust(script.path, text)
        if not ok then return fail(codes.error, "could not record the trust: " .. tostring(save_err)) end
      else
        return fail(codes.usage, "the project script " .. real .. " " .. why .. " (sha256 " ..
          hash:sub(1, 12) .. "); read it, then run 'spritescript trust " .. shell_quote(real) ..
          "' (or pass --trust to run it once)")
      end
    end
  end

  -- Compile the very bytes that were checked (loadfile would read again).
  local source = text:gsub("^#[^\n]*", "", 1)
  local chunk, err = loadstring(source, "@" .. script.path)
  if not chunk then return fail(codes.syntax, err) end
  script.chunk = chunk
  return script
end

return M
