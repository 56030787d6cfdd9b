-- spritescript.cli.fs: `spritescript fs`, a sprite's files from here
-- (docs/cli.md, "Files and services"), on the files API
-- (lua/stdlib/sprites/files.lua):
--   fs ls [PATH] [-l] [-r] [--json]
--   fs get REMOTE [LOCAL|-] [-r]
--   fs put LOCAL|- [REMOTE] [--mode 0644] [-r]
--   fs rm REMOTE... [-r] [-f]
-- Remote paths that are not absolute are relative to /home/sprite (where
-- commands start), as are "~" and "~/...".
local bit = require "bit"
local core = require "spritescript.core"
local errors = require "sprites.error"
local json = require "sprites.json"
local util = require "spritescript.cli.util"

local M = {}

local HOME = "/home/sprite"
local USAGE = "fs ls|get|put|rm ... [-s NAME] (see 'spritescript fs help')"
local HELP = [[
spritescript fs: a sprite's files (remote paths are relative to /home/sprite)
  fs ls [PATH] [-l] [-r] [--json]          list a directory (-l: mode, size, time; -r: the whole tree)
  fs get REMOTE [LOCAL|-] [-r]             download a file (- : to stdout; -r: a directory)
  fs put LOCAL|- [REMOTE] [--mode 0644] [-r]  upload a file (- : from stdin; -r: a directory)
  fs rm REMOTE... [-r] [-f]                remove (-r: directories and their content; -f: missing is fine)
every subcommand takes -s NAME (else the sprite named in .sprite)
]]

local function remote_path(path)
  if path == nil or path == "" or path == "~" then return HOME end
  if path:sub(1, 2) == "~/" then return HOME .. path:sub(2) end
  if path:sub(1, 1) == "/" then return path end
  return HOME .. "/" .. path
end

local function basename(path)
  local name = path:gsub("/+$", ""):match("([^/]*)$")
  return name ~= "" and name or nil
end

local function join(dir, name)
  return dir:sub(-1) == "/" and (dir .. name) or (dir .. "/" .. name)
end

-- "No such file or directory" from io.open's "path: No such file or directory".
local function reason(why)
  return (tostring(why):match(": ([^:]*)$")) or tostring(why)
end

local function parse(rest, usage, spec)
  spec.sprite, spec.usage = true, usage
  return util.parse(rest, spec)
end

---------------------------------------------------------------------------
-- fs ls
---------------------------------------------------------------------------

-- "drwxr-xr-x" from an entry's type and mode.
local function mode_string(entry)
  local kind = entry.is_dir and "d" or entry.type == "symlink" and "l" or entry.type == "file" and "-" or "?"
  local letters, out = "rwxrwxrwx", { kind }
  for i = 0, 8 do
    local set = bit.band(entry.mode or 0, bit.lshift(1, 8 - i)) ~= 0
    out[#out + 1] = set and letters:sub(i + 1, i + 1) or "-"
  end
  return table.concat(out)
end

local function human_size(n)
  n = tonumber(n) or 0
  if n < 1024 then return tostring(n) end
  local units, i = { "K", "M", "G", "T" }, 0
  repeat
    n, i = n / 1024, i + 1
  until n < 1024 or i == #units
  return (n < 10 and "%.1f%s" or "%.0f%s"):format(n, units[i])
end

local function ls(rest)
  local opts, args = parse(rest, "fs ls [PATH] [-l] [-r] [-s NAME] [--json]", {
    flags = { json = true, long = true, recursive = true }, short = { l = "long", r = "recursive" }, max = 1,
  })
  local s = util.sprite(opts)
  local path = remote_path(args[1])
  local entries = s:list(path, { recursive = opts.recursive })
  if opts.json then
    util.print_json(json.array(entries))
    return 0
  end
  local prefix = join(path, "")
  local function shown(e)
    local name = e.path:sub(1, #prefix) == prefix and e.path:sub(#prefix + 1) or e.name
    if e.is_dir then return util.colour("blue", name .. "/") end
    return name
  end
  if opts.long then
    local rows = {}
    for i, e in ipairs(entries) do
      rows[i] = { mode_string(e), human_size(e.size), util.relative_time(e.mod_time), shown(e) }
    end
    util.print_table({ "MODE", "SIZE", "MODIFIED", "NAME" }, rows)
  else
    for _, e in ipairs(entries) do io.stdout:write(shown(e), "\n") end
  end
  return 0
end

---------------------------------------------------------------------------
-- fs get
---------------------------------------------------------------------------

local function missing_remote(s, path)
  errors.raise("not_found", ("no such file or directory on %s: %s"):format(s.name, path))
end

-- Streams the remote file into `out` (an open file); returns its size.
local function stream(s, path, out, local_name)
  local reader = s:open(path)
  local n = 0
  for piece in reader:pieces() do
    local ok, why = out:write(piece)
    if not ok then
      reader:close()
      util.usage(("cannot write %s: %s"):format(local_name, reason(why)))
    end
    n = n + #piece
  end
  return n
end

local function get(rest)
  local opts, args = parse(rest, "fs get REMOTE [LOCAL|-] [-r] [-s NAME]", {
    flags = { recursive = true }, short = { r = "recursive" }, min = 1, max = 2,
  })
  local s = util.sprite(opts)
  local path = remote_path(args[1])
  local target = args[2]
  local entry = s:stat(path)
  if not entry then missing_remote(s, path) end
  if entry.is_dir then
    if not opts.recursive then
      util.usage(("%s is a directory on %s; add -r to copy the tree"):format(path, s.name))
    end
    if target == "-" then util.usage("a directory cannot go to stdout") end
    local dest = target or basename(path) or "."
    if target and core.stat(target) == "dir" and basename(path) then dest = join(target, basename(path)) end
    local result = s:pull(path, dest)
    io.stderr:write(("fs get: %d files, %d directories, %s bytes into %s\n"):format(
      result.files, result.dirs, tostring(result.bytes), dest))
    return 0
  end
  if target == "-" then
    stream(s, path, io.stdout, "stdout")
    io.stdout:flush()
    return 0
  end
  local dest = target or basename(path)
  if core.stat(dest) == "dir" then dest = join(dest, basename(path)) end
  -- Written beside the destination and renamed over it at the end, so a
  -- failed download never leaves half a file under the real name.
  local partial = dest .. ".spritescript-part"
  local out, why = io.open(partial, "wb")
  if not out then util.usage(("cannot write %s: %s"):format(dest, reason(why))) end
  local ok, err = pcall(stream, s, path, out, dest)
  out:close()
  if not ok then
    os.remove(partial)
    error(err, 0)
  end
  local renamed, rename_why = os.rename(partial, dest)
  if not renamed then
    os.remove(partial)
    util.usage(("cannot write %s: %s"):format(dest, reason(rename_why)))
  end
  return 0
end

---------------------------------------------------------------------------
-- fs put
---------------------------------------------------------------------------

local function put(rest)
  local opts, args = parse(rest, "fs put LOCAL|- [REMOTE] [--mode 0644] [-r] [-s NAME]", {
    flags = { recursive = true }, options = { mode = "string" }, short = { r = "recursive" }, min = 1, max = 2,
  })
  local source = args[1]
  if opts.mode and not (opts.mode:match("^[0-7]+$") and #opts.mode <= 4) then
    util.usage(("--mode is octal, like 0644 or 755, not '%s'"):format(opts.mode))
  end
  if source == "-" and not args[2] then util.usage("from stdin, give the REMOTE path") end
  local kind = source ~= "-" and core.stat(source) or nil
  if source ~= "-" and kind == nil then
    util.usage(("cannot read %s: No such file or directory"):format(source))
  end
  local s = util.sprite(opts)
  if kind == "dir" then
    if not opts.recursive then util.usage(("%s is a directory; add -r to copy the tree"):format(source)) end
    if opts.mode then util.usage("--mode is for one file (a tree keeps its modes)") end
    local dest = remote_path(args[2] or basename(source))
    local result = s:push(source, dest)
    io.stderr:write(("fs put: %d files, %d directories, %s bytes into %s on %s\n"):format(
      result.files, result.dirs, tostring(result.bytes), dest, s.name))
    for _, skipped in ipairs(result.skipped) do io.stderr:write("fs put: skipped (not a file): ", skipped, "\n") end
    return 0
  end
  local data
  if source == "-" then
    data = io.stdin:read("*a") or ""
  else
    local f, why = io.open(source, "rb")
    if not f then util.usage(("cannot read %s: %s"):format(source, reason(why))) end
    local read_why
    data, read_why = f:read("*a")
    f:close()
    if not data then util.usage(("cannot read %s: %s"):format(source, reason(read_why))) end
  end
  local dest = args[2]
  if not dest then
    dest = remote_path(basename(source))
  else
    local into_dir = dest:sub(-1) == "/"
    dest = remote_path(dest)
    if not into_dir then
      local entry = s:stat(dest)
      into_dir = entry ~= nil and entry.is_dir
    end
    if into_dir then
      if source == "-" then util.usage(("%s is a directory; from stdin give a file name"):format(dest)) end
      dest = join(dest, basename(source))
    end
  end
  s:write_file(dest, data, { mode = opts.mode })
  return 0
end

---------------------------------------------------------------------------
-- fs rm
---------------------------------------------------------------------------

local function rm(rest)
  local opts, args = parse(rest, "fs rm REMOTE... [-r] [-f] [-s NAME]", {
    flags = { recursive = true, force = true }, short = { r = "recursive", f = "force" }, min = 1,
  })
  local s = util.sprite(opts)
  for _, given in ipairs(args) do
    local path = remote_path(given)
    if path == "/" or path == HOME then
      util.usage(("refusing to remove %s"):format(path))
    end
    local ok, err = pcall(s.remove, s, path, { recursive = opts.recursive })
    if not ok then
      err = errors.wrap(err)
      if opts.force and err.kind == "not_found" then
        -- -f: a missing path is what was wanted
      elseif err.code == "ENOTEMPTY" then
        util.usage(("%s is a directory that is not empty; add -r"):format(path))
      else
        error(err, 0)
      end
    end
  end
  return 0
end

local subcommands = { ls = ls, get = get, put = put, rm = rm }

function M.fs(argv)
  return util.subcommand(argv, subcommands, "ls", USAGE, HELP)
end

return M
