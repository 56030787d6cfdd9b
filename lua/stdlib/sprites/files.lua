-- sprites.files: a sprite's filesystem from Lua (docs/lua-api.md, "Files"):
-- read, write, list, stat, remove, rename, copy, chmod, mkdir, streamed
-- reads, and push/pull of a local directory tree. Installed into
-- sprites.api's Sprite by api.lua.
local bit = require "bit"

local M = {}

function M.install(api, h)
  local client, task, errors, call = h.client, h.task, h.errors, h.call
  local check_options, set = h.check_options, h.set
  local Sprite = api.Sprite

  -- Argument checks raise `usage` at the script's line (level 3: the
  -- checker, the method, the script).
  local function check_path(what, path, name)
    if type(path) ~= "string" or path == "" then
      errors.raise("usage", ("%s: expected %s as a string"):format(what, name or "a path"), nil, 3)
    end
  end

  -- A mode: an octal string ("0644", "755") or the value as a number (420).
  local function mode_of(what, mode)
    if type(mode) == "string" and mode:match("^[0-7]+$") and #mode <= 4 then
      return tonumber(mode, 8)
    elseif type(mode) == "number" and mode >= 0 and mode <= 4095 and mode % 1 == 0 then
      return mode
    end
    errors.raise("usage", what .. ": a mode is an octal string (\"0644\", \"755\") or its value as a number (420)", nil, 3)
  end

  -- `path` made absolute (from "/", as the client resolves relative paths)
  -- and cleaned: "a/./b/../c/" is "/a/c".
  local function clean(path)
    local parts = {}
    for part in path:gmatch("[^/]+") do
      if part == ".." then
        parts[#parts] = nil
      elseif part ~= "." then
        parts[#parts + 1] = part
      end
    end
    return "/" .. table.concat(parts, "/")
  end

  local function join(dir, rel)
    return dir:sub(-1) == "/" and (dir .. rel) or (dir .. "/" .. rel)
  end

  -- Reading from a missing path: the entry is absent, not an error.
  local function missing(err)
    return err.kind == "not_found" or err.code == "ENOENT" or err.code == "ENOTDIR"
  end

  -- s:read_file(path) -> the whole file as a string (up to 1 GiB; larger
  -- ones with s:open)
  function Sprite:read_file(path)
    check_path("sprite:read_file", path)
    return call(("read %s on %s"):format(path, self.name), client.read_file(self.name, path))
  end

  local write_options = set("mode", "mkdir")

  -- s:write_file(path, data, {mode=, mkdir=true}) -> {path, size, mode}.
  -- The engine writes a temporary file and renames it over `path`.
  function Sprite:write_file(path, data, opts)
    opts = check_options("sprite:write_file", opts, write_options)
    check_path("sprite:write_file", path)
    if type(data) ~= "string" then
      errors.raise("usage", "sprite:write_file: data must be a string", nil, 2)
    end
    local mode = opts.mode ~= nil and mode_of("sprite:write_file", opts.mode) or nil
    return call(("write %s on %s"):format(path, self.name),
                client.write_file(self.name, path, data, mode, opts.mkdir ~= false))
  end

  local list_options = set("recursive", "pattern")

  -- s:list(path, {recursive=, pattern=}) -> entries sorted by path. A
  -- pattern is a shell glob on the name; with a "/" in it, on the path
  -- relative to `path` (as fs/list's).
  function Sprite:list(path, opts)
    opts = check_options("sprite:list", opts, list_options)
    check_path("sprite:list", path)
    if opts.pattern ~= nil and type(opts.pattern) ~= "string" then
      errors.raise("usage", "sprite:list: pattern must be a string", nil, 2)
    end
    local entries = call(("list %s on %s"):format(path, self.name),
                         client.list_dir(self.name, path, opts.recursive and true or false))
    if opts.pattern then
      local prefix = join(clean(path), "")
      local by_path = opts.pattern:find("/", 1, true) ~= nil
      local kept = {}
      for _, e in ipairs(entries) do
        local subject = e.name
        if by_path then
          subject = e.path:sub(1, #prefix) == prefix and e.path:sub(#prefix + 1) or e.name
        end
        if client.fnmatch(opts.pattern, subject, by_path) then kept[#kept + 1] = e end
      end
      entries = kept
    end
    table.sort(entries, function(a, b) return a.path < b.path end)
    return entries
  end

  -- s:stat(path) -> entry, or nil when there is nothing at `path`
  function Sprite:stat(path)
    check_path("sprite:stat", path)
    local what = ("stat %s on %s"):format(path, self.name)
    local op, id = client.stat(self.name, path)
    local entry, err = task.await(op, id, what)
    if entry == nil and type(err) == "table" then
      if missing(err) then return nil end
      errors.raise(err.kind or "api", err.message or what,
                   { status = err.status, code = err.code, op = what }, 2)
    end
    return entry
  end

  function Sprite:exists(path)
    check_path("sprite:exists", path)
    return self:stat(path) ~= nil
  end

  -- s:remove(path, {recursive=}) -> the removed paths, parents first
  function Sprite:remove(path, opts)
    opts = check_options("sprite:remove", opts, set("recursive"))
    check_path("sprite:remove", path)
    return call(("remove %s on %s"):format(path, self.name),
                client.remove(self.name, path, opts.recursive and true or false))
  end

  -- s:rename(from, to) -> {source, dest}
  function Sprite:rename(from, to)
    check_path("sprite:rename", from, "the source")
    check_path("sprite:rename", to, "the destination")
    return call(("rename %s to %s on %s"):format(from, to, self.name), client.rename(self.name, from, to))
  end

  -- s:copy(from, to, {recursive=, preserve=}) -> {copied = {{source, dest}...}, total_bytes}
  function Sprite:copy(from, to, opts)
    opts = check_options("sprite:copy", opts, set("recursive", "preserve"))
    check_path("sprite:copy", from, "the source")
    check_path("sprite:copy", to, "the destination")
    return call(("copy %s to %s on %s"):format(from, to, self.name),
                client.copy(self.name, from, to, opts.recursive and true or false,
                            opts.preserve and true or false))
  end

  -- s:chmod(path, mode, {recursive=}) -> {{path, mode}...}
  function Sprite:chmod(path, mode, opts)
    opts = check_options("sprite:chmod", opts, set("recursive"))
    check_path("sprite:chmod", path)
    mode = mode_of("sprite:chmod", mode)
    return call(("chmod %s on %s"):format(path, self.name),
                client.chmod(self.name, path, mode, opts.recursive and true or false))
  end

  -- s:chown(path, {user=, group=, recursive=}) -> {{path, uid, gid}...}
  function Sprite:chown(path, opts)
    opts = check_options("sprite:chown", opts, set("user", "group", "recursive"))
    check_path("sprite:chown", path)
    local user, group = opts.user, opts.group
    if user ~= nil then user = tostring(user) end
    if group ~= nil then group = tostring(group) end
    if user == nil and group == nil then
      errors.raise("usage", "sprite:chown: give user, group or both", nil, 2)
    end
    return call(("chown %s on %s"):format(path, self.name),
                client.chown(self.name, path, user, group, opts.recursive and true or false))
  end

  -- s:mkdir(path): the directory and its missing parents (0755). The
  -- filesystem API has no mkdir: a hidden empty file is written inside it
  -- (which makes the parents) and removed.
  function Sprite:mkdir(path)
    check_path("sprite:mkdir", path)
    local entry = self:stat(path)
    if entry then
      if entry.is_dir then return end
      errors.raise("conflict", ("mkdir %s on %s: it exists and is not a directory"):format(path, self.name),
                   { op = "mkdir " .. path }, 2)
    end
    local probe = join(path, (".spritescript-mkdir-%d-%d"):format(os.time(), math.random(1e9)))
    local what = ("mkdir %s on %s"):format(path, self.name)
    call(what, client.write_file(self.name, probe, "", nil, true))
    call(what, client.remove(self.name, probe, false))
  end

  ---------------------------------------------------------------------------
  -- Streamed reads
  ---------------------------------------------------------------------------
  local Reader = {}
  Reader.__index = Reader
  api.Reader = Reader

  -- s:open(path) -> reader; reader:read() gives the file piece by piece (the
  -- engine sends up to 4 MiB at a time), nil at the end.
  function Sprite:open(path)
    check_path("sprite:open", path)
    local what = ("read %s on %s"):format(path, self.name)
    return setmetatable({ path = path, sprite = self, what = what,
                          handle = call(what, client.open_file(self.name, path)) }, Reader)
  end

  function Reader:read()
    if not self.handle then return nil end
    local piece = call(self.what, self.handle:next())
    if piece == nil then self:close() end
    return piece
  end

  -- for piece in reader:pieces() do ... end
  function Reader:pieces()
    return function() return self:read() end
  end

  -- reader:bytes_read() -> bytes so far; the size, when the server sent it
  function Reader:bytes_read()
    if not self.handle then return self.done_bytes end
    return self.handle:info()
  end

  function Reader:close()
    if self.handle then
      self.done_bytes = self.handle:info()
      self.handle:close()
      self.handle = nil
    end
  end

  ---------------------------------------------------------------------------
  -- Directory trees
  ---------------------------------------------------------------------------
  local function local_failure(what, message, kind)
    errors.raise(kind or "error", what .. ": " .. message, { op = what }, 3)
  end

  -- Writes the remote file at `remote` into the local file `path`, piece
  -- by piece; returns its size.
  local function download(sprite, remote, path, what)
    local handle = call(what, client.open_file(sprite.name, remote))
    local f, why = io.open(path, "wb")
    if not f then handle:close(); local_failure(what, why) end
    local ok, err = pcall(function()
      local n = 0
      while true do
        local piece = call(what, handle:next())
        if piece == nil then return n end
        n = n + #piece
        assert(f:write(piece))
      end
    end)
    handle:close()
    f:close()
    if not ok then error(err, 0) end
    return err
  end

  -- s:push(local_path, remote_path) -> {files, dirs, bytes, skipped}: copies
  -- a local file to remote_path (into it when it ends in "/"), or a local
  -- tree into remote_path (made if needed), modes kept. Each file is
  -- streamed from the disk as it is sent (client.upload_file), never whole
  -- in memory; symlinks and special files in a tree are skipped (listed in
  -- skipped).
  function Sprite:push(local_dir, remote_dir)
    check_path("sprite:push", local_dir, "the local path")
    check_path("sprite:push", remote_dir, "the remote path")
    local what = ("push %s to %s on %s"):format(local_dir, remote_dir, self.name)
    local top, why = client.local_stat(local_dir)
    if not top then local_failure(what, why, "not_found") end
    if top.type == "file" then
      local remote = remote_dir
      if remote:sub(-1) == "/" then remote = remote .. local_dir:match("([^/]*)$") end
      local w = call(what, client.upload_file(self.name, remote, local_dir, top.mode, true))
      return { files = 1, dirs = 0, bytes = w.size, skipped = {} }
    elseif top.type ~= "directory" then
      local_failure(what, local_dir .. ": not a regular file or directory", "usage")
    end
    local tree
    tree, why = client.local_tree(local_dir)
    if not tree then local_failure(what, why, "not_found") end
    self:mkdir(remote_dir)
    local result = { files = 0, dirs = 0, bytes = 0, skipped = {} }
    local has_child, dirs = {}, {}
    for _, e in ipairs(tree) do
      if e.type == "file" or e.type == "directory" then
        local parent = e.path:match("^(.*)/[^/]*$")
        if parent then has_child[parent] = true end
      end
    end
    for _, e in ipairs(tree) do
      local remote = join(remote_dir, e.path)
      if e.type == "directory" then
        result.dirs = result.dirs + 1
        if not has_child[e.path] then self:mkdir(remote) end
        dirs[#dirs + 1] = e
      elseif e.type == "file" then
        local w = call(what, client.upload_file(self.name, remote, join(local_dir, e.path), e.mode, true))
        result.files = result.files + 1
        result.bytes = result.bytes + w.size
      else
        result.skipped[#result.skipped + 1] = e.path
      end
    end
    -- Directory modes last (a read-only directory would refuse its files),
    -- children before parents; new directories are 0755 already.
    for i = #dirs, 1, -1 do
      if dirs[i].mode ~= 493 then
        call(what, client.chmod(self.name, join(remote_dir, dirs[i].path), dirs[i].mode, false))
      end
    end
    return result
  end

  -- s:pull(remote_dir, local_dir) -> {files, dirs, bytes, skipped}: copies
  -- the remote tree into local_dir (made if needed), modes kept. Files are
  -- streamed to disk piece by piece, never whole in memory.
  function Sprite:pull(remote_dir, local_dir)
    check_path("sprite:pull", remote_dir, "the remote directory")
    check_path("sprite:pull", local_dir, "the local directory")
    local what = ("pull %s on %s to %s"):format(remote_dir, self.name, local_dir)
    local root = self:stat(remote_dir)
    if not root then
      errors.raise("not_found", what .. ": no such directory: " .. remote_dir, { op = what }, 2)
    elseif not root.is_dir then
      errors.raise("usage", what .. ": not a directory: " .. remote_dir, { op = what }, 2)
    end
    local entries = call(what, client.list_dir(self.name, remote_dir, true))
    table.sort(entries, function(a, b) return a.path < b.path end)
    local prefix = join(clean(remote_dir), "")
    local ok, why = client.local_mkdir(local_dir)
    if not ok then local_failure(what, why) end
    local result = { files = 0, dirs = 0, bytes = 0, skipped = {} }
    local dirs = {}
    for _, e in ipairs(entries) do
      local rel = e.path:sub(1, #prefix) == prefix and e.path:sub(#prefix + 1) or e.name
      local path = join(local_dir, rel)
      if e.is_dir then
        ok, why = client.local_mkdir(path)
        if not ok then local_failure(what, why) end
        result.dirs = result.dirs + 1
        dirs[#dirs + 1] = { path = path, mode = e.mode }
      elseif e.type == "file" then
        local parent = path:match("^(.*)/[^/]*$")
        if parent and parent ~= "" then client.local_mkdir(parent) end
        result.bytes = result.bytes + download(self, e.path, path, what)
        ok, why = client.local_chmod(path, bit.band(e.mode, 4095))
        if not ok then local_failure(what, why) end
        result.files = result.files + 1
      else
        result.skipped[#result.skipped + 1] = rel
      end
    end
    for i = #dirs, 1, -1 do client.local_chmod(dirs[i].path, bit.band(dirs[i].mode, 4095)) end
    return result
  end
end

return M
