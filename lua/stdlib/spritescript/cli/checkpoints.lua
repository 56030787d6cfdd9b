-- spritescript.cli.checkpoints: checkpoint [create|ls|info|rm], restore
-- (docs/cli.md "Checkpoints").
local json = require "sprites.json"
local util = require "spritescript.cli.util"

local M = {}

local usage = "checkpoint [create] [-s NAME] [--comment C] | checkpoint ls [-s NAME] [--all] [--json]"
  .. " | checkpoint info ID [-s NAME] [--json] | checkpoint rm ID [-s NAME]"

-- A checkpoint's fields for --json (without the sprite object it carries).
local function checkpoint_json(cp)
  return {
    id = cp.id, sprite = cp.sprite.name, comment = cp.comment, create_time = cp.create_time,
    is_auto = cp.is_auto, current = cp.current, source_id = cp.source_id,
    history = json.array(cp.history or {}),
  }
end

-- An on_progress callback feeding a progress line (util.progress).
local function feeding(p)
  return function(event)
    if event.message and event.message ~= "" then p:update(event.message) end
  end
end

local function create(argv)
  local opts = util.parse(argv, {
    flags = { json = true }, options = { sprite = "string", comment = "string" },
    short = { s = "sprite", m = "comment" }, max = 0,
    usage = "checkpoint [create] [-s NAME] [--comment C] [--json]",
  })
  local s = util.sprite(opts)
  local cp = util.with_progress("checkpoint of " .. s.name, function(p)
    return s:checkpoint { comment = opts.comment, on_progress = feeding(p) }
  end)
  if opts.json then
    util.print_json(checkpoint_json(cp))
  else
    io.stdout:write(cp.id, "\n")
  end
  return 0
end

local function ls(argv)
  local opts = util.parse(argv, {
    flags = { json = true, all = true }, options = { sprite = "string" },
    short = { s = "sprite" }, max = 0,
    usage = "checkpoint ls [-s NAME] [--all] [--json]",
  })
  local s = util.sprite(opts)
  local list = s:checkpoints { auto = opts.all }
  if opts.json then
    local out = json.array()
    for i, cp in ipairs(list) do out[i] = checkpoint_json(cp) end
    util.print_json(out)
    return 0
  end
  if #list == 0 then
    io.stderr:write("no checkpoints of ", s.name, opts.all and "" or " (--all shows automatic ones)",
                    "\n")
    return 0
  end
  local rows = {}
  for _, cp in ipairs(list) do
    local id = cp.current and util.colour("green", cp.id .. " *") or cp.id
    rows[#rows + 1] = { id, util.relative_time(cp.create_time), cp.is_auto and "auto" or "",
                        cp.comment or "" }
  end
  util.print_table({ "ID", "CREATED", "KIND", "COMMENT" }, rows)
  if util.is_terminal(1) then
    for _, cp in ipairs(list) do
      if cp.current then
        io.stdout:write(util.colour("dim", "* the checkpoint " .. s.name .. " was last restored from"), "\n")
        break
      end
    end
  end
  return 0
end

local function info(argv)
  local opts, args = util.parse(argv, {
    flags = { json = true }, options = { sprite = "string" }, short = { s = "sprite" },
    min = 1, max = 1, usage = "checkpoint info ID [-s NAME] [--json]",
  })
  local s = util.sprite(opts)
  local cp = s:get_checkpoint(args[1])
  if opts.json then
    util.print_json(checkpoint_json(cp))
    return 0
  end
  local rows = {
    { "id", cp.id },
    { "sprite", s.name },
    { "created", (cp.create_time or "") .. "  (" .. util.relative_time(cp.create_time) .. ")" },
    { "comment", cp.comment or "" },
    { "automatic", cp.is_auto and "yes" or "no" },
    { "current", cp.current and "yes (last restored from)" or "no" },
    { "source", (cp.source_id ~= nil and cp.source_id ~= "") and cp.source_id or "-" },
    { "history", #(cp.history or {}) > 0 and table.concat(cp.history, " <- ") or "-" },
  }
  for _, row in ipairs(rows) do
    io.stdout:write(util.colour("dim", ("%-10s"):format(row[1])), " ", row[2], "\n")
  end
  return 0
end

local function rm(argv)
  local opts, args = util.parse(argv, {
    options = { sprite = "string" }, short = { s = "sprite" }, min = 1, max = 1,
    usage = "checkpoint rm ID [-s NAME]",
  })
  local s = util.sprite(opts)
  s:delete_checkpoint(args[1])
  io.stdout:write("deleted checkpoint ", args[1], " of ", s.name, "\n")
  return 0
end

local subcommands = {
  create = create, ls = ls, list = ls, info = info, rm = rm, delete = rm,
  restore = function(argv) return M.restore(argv) end,
}

function M.checkpoint(argv)
  return util.subcommand(argv, subcommands, "create", usage)
end

function M.restore(argv)
  local opts, args = util.parse(argv, {
    options = { sprite = "string" }, short = { s = "sprite" }, min = 1, max = 1,
    usage = "restore ID [-s NAME]",
  })
  local s = util.sprite(opts)
  util.with_progress("restore of " .. s.name .. " to " .. args[1], function(p)
    return s:restore(args[1], { on_progress = feeding(p) })
  end)
  io.stdout:write("restored ", s.name, " to ", args[1], "\n")
  return 0
end

return M
