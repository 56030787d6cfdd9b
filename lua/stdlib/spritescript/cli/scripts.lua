-- spritescript.cli.scripts: `spritescript scripts` (every script `run NAME`
-- can find, with its description and origin) and `spritescript trust`
-- (a project's scripts run only once trusted). docs/cli.md, "Scripts as
-- team tools"; the work is in spritescript.scripts.
local core = require "spritescript.core"
local json = require "sprites.json"
local scripts = require "spritescript.scripts"
local util = require "spritescript.cli.util"

local M = {}

-- spritescript scripts [--json]
function M.scripts(argv)
  local opts = util.parse(argv, { flags = { json = true, help = true }, max = 0,
                                  usage = "scripts [--json]" })
  if opts.help then
    io.stdout:write("usage: spritescript scripts [--json]\n\n",
                    "Lists the scripts 'spritescript run NAME' finds, in lookup order:\n",
                    "  project  .spritescript/scripts/ here and in each parent directory (run once trusted)\n",
                    "  user     $XDG_CONFIG_HOME/spritescript/scripts/\n",
                    "  path     scripts/ in each $SPRITESCRIPT_PATH directory\n",
                    "A script shadowed by an earlier one of the same name is marked.\n")
    return 0
  end
  local found = scripts.list()
  local trust = scripts.load_trust()
  local items = json.array({})
  for _, s in ipairs(found) do
    -- Read once: the header comes from the text, never from running it.
    local text, read_err = scripts.read_file(s.path)
    local header = text and scripts.parse_header(text)
    local item = {
      name = s.name, path = s.path, origin = s.origin,
      shadowed = s.shadowed_by ~= nil, shadowed_by = s.shadowed_by,
      description = header and header.summary or "",
      params = json.array({}),
    }
    if header then
      for _, p in ipairs(header.params) do
        item.params[#item.params + 1] = {
          name = p.name, type = p.type, choices = p.choices, default = p.default,
          required = p.required, help = p.help,
        }
      end
      if #header.errors > 0 then item.header_error = header.errors[1] end
    else
      item.header_error = tostring(read_err)
    end
    if s.origin == "project" then
      local entry = trust[core.realpath(s.path) or s.path]
      item.trusted = text ~= nil and type(entry) == "table" and entry.sha256 == core.sha256(text)
    end
    items[#items + 1] = item
  end

  if opts.json then
    util.print_json(items)
    return 0
  end
  if #items == 0 then
    io.stderr:write("no scripts found (see 'spritescript scripts --help' for where they go)\n")
    return 0
  end
  local rows = {}
  for _, item in ipairs(items) do
    local origin = item.origin
    if item.trusted == false then origin = origin .. " " .. util.colour("yellow", "(untrusted)") end
    local description = item.description
    if item.header_error then description = util.colour("red", "bad header: " .. item.header_error) end
    if item.shadowed then
      rows[#rows + 1] = { util.colour("dim", item.name), util.colour("dim", origin .. " (shadowed)"),
                          util.colour("dim", description) }
    else
      rows[#rows + 1] = { util.colour("bold", item.name), origin, description }
    end
  end
  util.print_table({ "NAME", "ORIGIN", "DESCRIPTION" }, rows)
  return 0
end

-- The file `trust` acts on: a path, else a script name looked up like `run`.
local function script_path(target)
  local kind = core.stat(target)
  if kind == "file" then return target end
  if kind == "dir" then util.usage("trust: " .. target .. " is a directory; give a script file") end
  if scripts.is_name(target) then
    local found = scripts.find(target)
    if found then return found.path end
  end
  util.usage("trust: no such script: " .. target)
end

-- spritescript trust PATH...        trust these scripts as they are now
-- spritescript trust --remove PATH  forget one
-- spritescript trust --list [--json]
function M.trust(argv)
  local usage = "trust PATH... | trust --remove PATH... | trust --list [--json]"
  local opts, paths = util.parse(argv, { flags = { remove = true, list = true, json = true, help = true },
                                        usage = usage })
  if opts.help then
    io.stdout:write("usage: spritescript ", usage, "\n\n",
                    "Scripts from a project's .spritescript/scripts/ run only once trusted,\n",
                    "keyed by their real path and sha256: a changed script asks again.\n",
                    "The record is ", scripts.trust_file(), "\n")
    return 0
  end
  if opts.list then
    if #paths > 0 then util.usage("trust --list takes no paths; usage: spritescript " .. usage) end
    local store = scripts.load_trust()
    local items = json.array({})
    for path, entry in pairs(store) do
      if type(entry) == "table" then
        local text = scripts.read_file(path)
        local status = not text and "missing"
          or (core.sha256(text) == entry.sha256 and "trusted" or "changed")
        items[#items + 1] = { path = path, sha256 = entry.sha256, trusted_at = entry.trusted_at,
                              status = status }
      end
    end
    table.sort(items, function(a, b) return a.path < b.path end)
    if opts.json then
      util.print_json(items)
      return 0
    end
    local rows = {}
    for _, item in ipairs(items) do
      local status = item.status == "trusted" and item.status or util.colour("yellow", item.status)
      rows[#rows + 1] = { item.path, status, item.sha256:sub(1, 12), util.relative_time(item.trusted_at) }
    end
    util.print_table({ "PATH", "STATUS", "SHA256", "TRUSTED" }, rows)
    return 0
  end
  if opts.json then util.usage("--json goes with --list; usage: spritescript " .. usage) end
  if #paths == 0 then util.usage("a script path is needed; usage: spritescript " .. usage) end
  for _, target in ipairs(paths) do
    if opts.remove then
      local real = core.realpath(target) or target
      local removed, why = scripts.untrust(target)
      if removed == nil then error("could not update " .. scripts.trust_file() .. ": " .. tostring(why), 0) end
      io.stdout:write(removed and "no longer trusted: " or "was not trusted: ", real, "\n")
    else
      local real, hash = scripts.trust(script_path(target))
      if not real then error("could not record the trust: " .. tostring(hash), 0) end
      io.stdout:write("trusted ", real, " (sha256 ", hash:sub(1, 12), ")\n")
    end
  end
  return 0
end

return M
