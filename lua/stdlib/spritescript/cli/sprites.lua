-- spritescript.cli.sprites: ls, create, destroy, use (docs/cli.md "Sprites").
local core = require "spritescript.core"
local json = require "sprites.json"
local api = require "sprites"
local util = require "spritescript.cli.util"

local M = {}

-- A sprite's fields for --json: its info with labels always an array.
local function sprite_json(info)
  local out = {}
  for k, v in pairs(info) do out[k] = v end
  out.labels = json.array(info.labels or {})
  return out
end

local function status_text(status)
  local colour = ({ running = "green", warm = "yellow", cold = "blue" })[status]
  return colour and util.colour(colour, status) or (status or "")
end

-- When it last ran: now while it runs, else last_running_at when the API
-- says (the local engine does), else nothing known.
local function last_running(info)
  if info.status == "running" then return "now" end
  if info.last_running_at and info.last_running_at ~= "" then
    return util.relative_time(info.last_running_at)
  end
  return "-"
end

local ls_spec = {
  flags = { json = true },
  options = { prefix = "string", label = "list" },
  max = 0,
  usage = "ls [--prefix P] [--label L]... [--json]",
}

function M.ls(argv)
  local opts = util.parse(argv, ls_spec)
  local list = api.list { prefix = opts.prefix, labels = opts.label }
  table.sort(list, function(a, b) return a.name < b.name end)
  if opts.json then
    local out = json.array()
    for i, s in ipairs(list) do out[i] = sprite_json(s.info) end
    util.print_json(out)
    return 0
  end
  if #list == 0 then
    io.stderr:write((opts.prefix or #opts.label > 0) and "no sprites match\n"
                    or "no sprites yet: spritescript create NAME\n")
    return 0
  end
  local rows = {}
  for _, s in ipairs(list) do
    local info = s.info
    rows[#rows + 1] = {
      util.colour("bold", info.name), status_text(info.status),
      table.concat(info.labels or {}, ","), last_running(info), util.relative_time(info.created_at),
    }
  end
  util.print_table({ "NAME", "STATUS", "LABELS", "LAST RUNNING", "CREATED" }, rows)
  return 0
end

local create_spec = {
  flags = { wait = true, json = true },
  options = { label = "list" },
  min = 1, max = 1,
  usage = "create NAME [--label L]... [--wait] [--json]",
}

function M.create(argv)
  local opts, args = util.parse(argv, create_spec)
  local name = args[1]
  local s = util.with_progress("creating " .. name, function(p)
    local created = api.create(name, { labels = opts.label, wait_for_capacity = opts.wait or nil })
    if opts.wait then
      -- Running a command is the proof that it is up, whatever the server
      -- reports as its status.
      p:update("waiting until it runs commands")
      created:run({ "true" }, { check = true })
      created:refresh()
    end
    return created
  end)
  if opts.json then
    util.print_json(sprite_json(s.info))
  else
    local url = s.info.url
    io.stdout:write("created ", name, (url and url ~= "") and ("  " .. url) or "", "\n")
  end
  return 0
end

local destroy_spec = {
  flags = { force = true },
  min = 1, max = 1,
  usage = "destroy NAME [--force]",
}

function M.destroy(argv)
  local opts, args = util.parse(argv, destroy_spec)
  local name = args[1]
  if not opts.force then
    if not util.is_terminal(0) then
      util.usage("refusing to destroy " .. name .. " unasked (stdin is not a terminal); pass --force")
    end
    api.get(name)  -- an unknown name fails here, before the question
    if not util.confirm(("Destroy sprite %s and all its checkpoints? This cannot be undone."):format(name)) then
      io.stderr:write("not destroyed\n")
      return 1
    end
  end
  api.delete(name)
  io.stdout:write("destroyed ", name, "\n")
  return 0
end

local use_spec = {
  flags = { unset = true },
  max = 1,
  usage = "use NAME | use --unset",
}

function M.use(argv)
  local opts, args = util.parse(argv, use_spec)
  local dir = core.getcwd()
  local path = (dir == "/" and "" or dir) .. "/.sprite"
  local kind = core.stat(path)
  if kind and kind ~= "file" then
    util.usage(path .. " exists and is not a file; move it away first")
  end
  if opts.unset then
    if #args > 0 then util.usage("give a NAME or --unset, not both") end
    if not kind then
      io.stderr:write("no .sprite in ", dir, "\n")
      return 0
    end
    local ok, err = os.remove(path)
    if not ok then error(err, 0) end
    io.stdout:write("removed ", path, "\n")
    return 0
  end
  if #args == 0 then
    -- Without a name: say which sprite this directory uses.
    local found, name = util.find_dot_sprite()
    if not found then
      util.usage("no .sprite here or above: give a NAME; usage: spritescript " .. use_spec.usage)
    end
    io.stdout:write(name, "  (", found, ")\n")
    return 0
  end
  local name = args[1]
  api.get(name)  -- not_found before writing a .sprite naming nothing
  local f, err = io.open(path, "w")
  if not f then error("cannot write " .. path .. ": " .. tostring(err), 0) end
  f:write(name, "\n")
  f:close()
  io.stdout:write("using ", name, " in ", dir, " (.sprite)\n")
  return 0
end

return M
