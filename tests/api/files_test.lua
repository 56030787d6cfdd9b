-- A sprite's filesystem from Lua (lua/stdlib/sprites/files.lua) against a
-- real local engine (tests/api/run.sh starts it): round trips (binary,
-- 5 MiB, modes), streamed reads, list/stat/exists/remove/rename/copy/
-- chmod/mkdir, push/pull of a local tree (and push of one file), and the
-- errors bad input gets.
local T = require "harness"

local unique = 0
local function fresh(prefix)
  unique = unique + 1
  return sprites.create(("%s-%d-%d"):format(prefix, os.time() % 100000, unique))
end

local function local_tmp()
  local p = io.popen("mktemp -d")
  local dir = p:read("*l")
  p:close()
  return dir
end

local function write_local(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function read_local(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local H = "/home/sprite/"

T.test("round trips: binary bytes, 5 MiB, empty, modes, mkdir of parents", function()
  local s = fresh("files-rt")
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  local binary = table.concat(bytes) .. "\0\r\n\0"
  local w = s:write_file(H .. "bin", binary)
  T.eq(w.size, #binary); T.eq(w.mode, tonumber("644", 8))
  T.eq(s:read_file(H .. "bin"), binary)
  -- 5 MiB of varied bytes, also checked from inside the sprite
  local chunk = {}
  for i = 1, 4096 do chunk[i] = string.char((i * 7) % 256) end
  local big = table.concat(chunk):rep(1280)
  T.eq(#big, 5 * 1024 * 1024)
  s:write_file(H .. "big", big)
  T.eq(s:read_file(H .. "big") == big, true, "5 MiB read back")
  T.eq(s:run({ "stat", "-c", "%s", H .. "big" }).stdout, tostring(#big) .. "\n")
  s:write_file(H .. "empty", "")
  T.eq(s:read_file(H .. "empty"), "")
  -- modes: an octal string or the number
  T.eq(s:write_file(H .. "secret", "x", { mode = "0600" }).mode, tonumber("600", 8))
  T.eq(s:run({ "stat", "-c", "%a", H .. "secret" }).stdout, "600\n")
  s:write_file(H .. "script", "#!/bin/sh\necho hi\n", { mode = tonumber("755", 8) })
  T.eq(s:run({ H .. "script" }).stdout, "hi\n")
  -- a rewrite keeps the mode; the write replaces the file (temp + rename)
  s:write_file(H .. "secret", "yy")
  T.eq(s:stat(H .. "secret").mode, tonumber("600", 8))
  T.eq(s:read_file(H .. "secret"), "yy")
  -- parents are made unless mkdir = false
  s:write_file(H .. "a/b/c/deep.txt", "deep")
  T.eq(s:read_file(H .. "a/b/c/deep.txt"), "deep")
  local err = T.raises("not_found", s.write_file, s, H .. "nope/x.txt", "x", { mkdir = false })
  T.eq(err.code, "ENOENT")
  s:delete()
end)

T.test("open: a big file piece by piece", function()
  local s = fresh("files-open")
  local big = ("0123456789abcdef"):rep(9 * 65536)  -- 9 MiB: more than one engine chunk
  s:write_file(H .. "big", big)
  local r = s:open(H .. "big")
  local pieces, total, parts = 0, 0, {}
  for piece in r:pieces() do
    pieces = pieces + 1
    total = total + #piece
    parts[#parts + 1] = piece
  end
  T.eq(total, #big)
  T.ok(pieces > 1, "more than one piece")
  T.eq(table.concat(parts) == big, true, "the pieces make the file")
  T.eq(r:read(), nil, "nil after the end")
  T.eq(r:bytes_read(), #big)
  -- closing early is fine
  local early = s:open(H .. "big")
  T.ok(#early:read() > 0)
  early:close()
  T.eq(early:read(), nil)
  T.raises("not_found", s.open, s, H .. "missing")
  s:delete()
end)

T.test("list, stat, exists", function()
  local s = fresh("files-list")
  s:write_file(H .. "d/one.txt", "1")
  s:write_file(H .. "d/two.log", "22")
  s:write_file(H .. "d/sub/three.txt", "333")
  local names = {}
  for _, e in ipairs(s:list(H .. "d")) do names[#names + 1] = e.name .. (e.is_dir and "/" or "") end
  T.eq(table.concat(names, ","), "one.txt,sub/,two.log")
  local all = s:list(H .. "d", { recursive = true })
  T.eq(#all, 4)
  local txt = s:list(H .. "d", { recursive = true, pattern = "*.txt" })
  T.eq(#txt, 2)
  T.eq(txt[1].path, H .. "d/one.txt"); T.eq(txt[2].path, H .. "d/sub/three.txt")
  local nested = s:list(H .. "d", { recursive = true, pattern = "sub/*" })
  T.eq(#nested, 1); T.eq(nested[1].name, "three.txt")
  local e = s:stat(H .. "d/two.log")
  T.eq(e.name, "two.log"); T.eq(e.type, "file"); T.eq(e.size, 2); T.eq(e.is_dir, false)
  T.eq(e.path, H .. "d/two.log"); T.ok(e.mod_time ~= "")
  local d = s:stat(H .. "d/sub")
  T.eq(d.is_dir, true); T.eq(d.type, "directory")
  T.eq(s:stat(H .. "d/missing"), nil)
  T.eq(s:stat(H .. "d/one.txt/below"), nil, "below a file is missing too")
  T.eq(s:exists(H .. "d/one.txt"), true)
  T.eq(s:exists(H .. "d/sub"), true)
  T.eq(s:exists(H .. "nothing"), false)
  T.eq(s:stat("/").is_dir, true)
  T.raises("not_found", s.list, s, H .. "missing")
  s:delete()
end)

T.test("remove, rename, copy, chmod, mkdir", function()
  local s = fresh("files-ops")
  s:write_file(H .. "f", "data")
  local moved = s:rename(H .. "f", H .. "g")
  T.eq(moved.source, H .. "f"); T.eq(moved.dest, H .. "g")
  T.eq(s:exists(H .. "f"), false); T.eq(s:read_file(H .. "g"), "data")
  local copied = s:copy(H .. "g", H .. "h")
  T.eq(copied.total_bytes, 4); T.eq(copied.copied[1].dest, H .. "h")
  T.eq(s:read_file(H .. "h"), "data")
  s:write_file(H .. "tree/x/y", "y")
  T.raises("usage", s.copy, s, H .. "tree", H .. "tree2")  -- a directory needs recursive
  s:copy(H .. "tree", H .. "tree2", { recursive = true })
  T.eq(s:read_file(H .. "tree2/x/y"), "y")
  local changed = s:chmod(H .. "h", "0640")
  T.eq(changed[1].path, H .. "h"); T.eq(changed[1].mode, tonumber("640", 8))
  T.eq(s:stat(H .. "h").mode, tonumber("640", 8))
  s:chmod(H .. "tree2", "700", { recursive = true })
  T.eq(s:stat(H .. "tree2/x/y").mode, tonumber("700", 8))
  -- mkdir makes parents, is fine when it exists, leaves nothing behind
  s:mkdir(H .. "m/n/o")
  T.eq(s:stat(H .. "m/n/o").is_dir, true)
  T.eq(#s:list(H .. "m/n/o"), 0)
  s:mkdir(H .. "m/n/o")
  T.raises("conflict", s.mkdir, s, H .. "h")
  -- remove: a file, a non-empty directory needs recursive
  T.same_table(s:remove(H .. "g"), { H .. "g" })
  T.raises("conflict", s.remove, s, H .. "tree")
  local removed = s:remove(H .. "tree", { recursive = true })
  T.eq(removed[1], H .. "tree"); T.eq(#removed, 3)
  T.eq(s:exists(H .. "tree"), false)
  local err = T.raises("not_found", s.remove, s, H .. "tree")
  T.eq(err.status, 404); T.eq(err.code, "ENOENT"); T.match(err.message, "ENOENT")
  T.raises("not_found", s.rename, s, H .. "gone", H .. "elsewhere")
  T.raises("not_found", s.read_file, s, H .. "gone")
  s:delete()
end)

T.test("push and pull a tree with subdirectories, modes and binary files", function()
  local s = fresh("files-tree")
  local src = local_tmp()
  os.execute(("mkdir -p %s/a/b %s/empty && chmod 700 %s/a/b"):format(src, src, src))
  write_local(src .. "/top.txt", "top\n")
  write_local(src .. "/a/mid.bin", "\0\1\2\255")
  write_local(src .. "/a/b/leaf.sh", "#!/bin/sh\necho leaf\n")
  os.execute("chmod 755 " .. src .. "/a/b/leaf.sh")
  os.execute(("ln -s top.txt %s/link"):format(src))
  local pushed = s:push(src, H .. "proj")
  T.eq(pushed.files, 3); T.eq(pushed.dirs, 3); T.eq(pushed.bytes, 4 + 4 + 20)
  T.same_table(pushed.skipped, { "link" })
  T.eq(s:read_file(H .. "proj/top.txt"), "top\n")
  T.eq(s:read_file(H .. "proj/a/mid.bin"), "\0\1\2\255")
  T.eq(s:run({ H .. "proj/a/b/leaf.sh" }).stdout, "leaf\n")
  T.eq(s:stat(H .. "proj/a/b").mode, tonumber("700", 8))
  T.eq(s:stat(H .. "proj/empty").is_dir, true)
  -- a single file: to a path, or into a directory when it ends in "/"
  local one = s:push(src .. "/a/mid.bin", H .. "single/copy.bin")
  T.eq(one.files, 1); T.eq(one.dirs, 0); T.eq(one.bytes, 4)
  T.eq(s:read_file(H .. "single/copy.bin"), "\0\1\2\255")
  s:push(src .. "/a/b/leaf.sh", H .. "single/")
  T.eq(s:stat(H .. "single/leaf.sh").mode, tonumber("755", 8))
  T.raises("usage", s.push, s, "/dev/null", H .. "null")
  -- and back, into a new local directory
  s:write_file(H .. "proj/a/big", ("z"):rep(5 * 1024 * 1024 + 3))
  local dst = local_tmp() .. "/copy"
  local pulled = s:pull(H .. "proj", dst)
  T.eq(pulled.files, 4); T.eq(pulled.dirs, 3)
  T.eq(read_local(dst .. "/top.txt"), "top\n")
  T.eq(read_local(dst .. "/a/mid.bin"), "\0\1\2\255")
  T.eq(#read_local(dst .. "/a/big"), 5 * 1024 * 1024 + 3)
  local p = io.popen(("stat -c %%a %s/a/b/leaf.sh %s/a/b; ls -d %s/empty"):format(dst, dst, dst))
  T.eq(p:read("*a"), ("755\n700\n%s/empty\n"):format(dst))
  p:close()
  T.raises("not_found", s.pull, s, H .. "nothing-here", dst)
  T.raises("usage", s.pull, s, H .. "proj/top.txt", dst)
  T.raises("not_found", s.push, s, src .. "/does-not-exist", H .. "x")
  os.execute(("rm -rf %s %s"):format(src, dst:match("^(.*)/copy$")))
  s:delete()
end)

T.test("bad input: option typos, wrong types, bad modes", function()
  local s = sprites.sprite("not-even-created")
  local err = T.raises("usage", s.write_file, s, "/x", "data", { mdoe = "0644" })
  T.match(err.message, "unknown option 'mdoe'")
  err = T.raises("usage", s.list, s, "/", { recursve = true })
  T.match(err.message, "recursve")
  T.raises("usage", s.write_file, s, "/x", 42)
  T.raises("usage", s.write_file, s, "/x", "d", { mode = "0999" })
  T.raises("usage", s.write_file, s, "/x", "d", { mode = 99999 })
  T.raises("usage", s.chmod, s, "/x", "rwx")
  T.raises("usage", s.read_file, s, nil)
  T.raises("usage", s.remove, s, "/x", { force = true })
  T.raises("usage", s.copy, s, "/x", "/y", { recursiv = true })
  T.raises("not_found", s.read_file, s, "/etc/hostname")  -- no such sprite
end)

T.done()
