-- Tunnels, port forwards and port events from Lua (lua/stdlib/sprites/
-- network.lua) against a real local engine (tests/api/run.sh starts it):
-- an HTTP round trip through s:tunnel, typed refusals, a forward fetched
-- from the host with curl in the background (the event loop keeps
-- running: the relay is C++ on it), closed forwards refusing connections,
-- forwards closed with the task that opened them, and s:ports() seeing a
-- server come and go.
local T = require "harness"

local unique = 0
local function fresh(prefix)
  unique = unique + 1
  return sprites.create(("%s-%d-%d"):format(prefix, os.time() % 100000, unique))
end

local function read_local(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

local function local_tmp()
  local p = io.popen("mktemp -d")
  local dir = p:read("*l")
  p:close()
  return dir
end

-- Waits until `port` listens in the sprite (a tunnel connects).
local function wait_listening(s, port)
  local deadline = sprites.now() + 15
  while true do
    local ok, t = pcall(s.tunnel, s, port)
    if ok then
      t:close()
      return
    end
    if not (sprites.error.is(t) and t.code == "ECONNREFUSED") or sprites.now() > deadline then error(t, 0) end
    sprites.sleep(0.05)
  end
end

-- A web server in the sprite serving /tmp/www on `port` (ended with the task).
local function web_server(s, port, files)
  for name, data in pairs(files) do s:write_file("/tmp/www/" .. name, data) end
  local p = s:spawn { "python3", "-m", "http.server", tostring(port), "--bind", "127.0.0.1",
                      "--directory", "/tmp/www" }
  wait_listening(s, port)
  return p
end

-- Fetches http://127.0.0.1:PORT/PATH on this machine with curl in the
-- background; the body and curl's exit code, polled without blocking the
-- loop (the forward relays on it).
local function fetch(port, path, dir, tag)
  local out, done = ("%s/%s.body"):format(dir, tag), ("%s/%s.done"):format(dir, tag)
  os.execute(("(curl -s -m 10 -o %s http://127.0.0.1:%d%s; echo $? > %s.tmp; mv %s.tmp %s) >/dev/null 2>&1 &")
    :format(out, port, path, done, done, done))
  return function()
    local code = read_local(done)
    if not code or code == "" then return nil end
    return tonumber(code:match("%d+")), read_local(out)
  end
end

-- curl's exit code for a connection to 127.0.0.1:PORT, run to its end
-- (a refusal is immediate: blocking the loop for it is harmless).
local function connect_code(port, dir)
  local file = dir .. "/connect.code"
  os.execute(("curl -s -m 3 -o /dev/null http://127.0.0.1:%d/ >/dev/null 2>&1; echo $? > %s"):format(port, file))
  return tonumber(read_local(file):match("%d+"))
end

T.test("tunnel: an HTTP GET round trip, typed refusals, bad options", function()
  local s = fresh("net-tun")
  web_server(s, 8080, { ["hello.txt"] = "hello through a tunnel\n" })
  local t = s:tunnel(8080)
  t:write("GET /hello.txt HTTP/1.0\r\nHost: x\r\n\r\n")
  local parts = {}
  while true do
    local piece = t:read()
    if piece == nil then break end
    parts[#parts + 1] = piece
  end
  local response = table.concat(parts)
  T.match(response, "^HTTP/1.0 200")
  T.match(response, "\r\n\r\nhello through a tunnel\n$")
  T.eq(t:read(), nil, "read after the end")
  T.eq(t:info().target, "localhost:8080")
  t:close()
  -- host: another name of the sprite's loopback
  local t2 = s:tunnel(8080, { host = "127.0.0.1" })
  t2:write("GET /hello.txt HTTP/1.0\r\n\r\n")
  T.match(t2:read(), "^HTTP/1.0 200")
  t2:close()
  T.eq(t2:read(), nil, "a closed tunnel reads nil")
  -- refusals
  local err = T.raises("network", s.tunnel, s, 9)
  T.eq(err.code, "ECONNREFUSED")
  T.match(err.message, "connection refused")
  T.raises("usage", s.tunnel, s, 80, { host = "example.com" })
  T.raises("usage", s.tunnel, s, 0)
  T.raises("usage", s.tunnel, s, 70000)
  T.raises("usage", s.tunnel, s, "80")
  err = T.raises("usage", s.tunnel, s, 80, { hots = "x" })
  T.match(err.message, "unknown option 'hots'")
  T.raises("not_found", function() sprites.sprite("no-such-sprite"):tunnel(80) end)
end)

T.test("forward: curl on the host fetches through it, several at once; closed, it refuses", function()
  local s = fresh("net-fwd")
  local big = string.rep("0123456789abcdef", 2 * 65536)  -- 2 MiB
  web_server(s, 8080, { ["hello.txt"] = "hello through a forward\n", ["big.bin"] = big })
  local dir = local_tmp()
  local fwd = s:forward(8080)
  T.ok(fwd.local_port > 0, "a free port was chosen")
  T.eq(fwd.remote_port, 8080)
  T.eq(fwd.host, "127.0.0.1")
  T.eq(fwd:connections(), 0)
  local waits = {}
  for i = 1, 3 do waits[i] = fetch(fwd.local_port, "/hello.txt", dir, "small" .. i) end
  waits[4] = fetch(fwd.local_port, "/big.bin", dir, "big")
  local results = {}
  T.eventually(15, function()
    for i, wait in ipairs(waits) do
      if not results[i] then
        local code, body = wait()
        if code then results[i] = { code = code, body = body } end
      end
    end
    -- (not #results: with a hole, # may count the last one anyway)
    for i = 1, #waits do
      if not results[i] then return false end
    end
    return true
  end, "the fetches through the forward")
  for i = 1, 3 do
    T.eq(results[i].code, 0, "curl " .. i)
    T.eq(results[i].body, "hello through a forward\n")
  end
  T.eq(results[4].code, 0, "curl of 2 MiB")
  T.ok(results[4].body == big, "2 MiB came through intact")
  local stats = fwd:stats()
  T.eq(stats.accepted, 4)
  T.eq(stats.failed, 0)
  T.ok(stats.bytes_in > #big, "bytes_in counts the responses")
  T.eventually(5, function() return fwd:connections() == 0 end, "the connections to end")
  fwd:close()
  T.eq(fwd:stats().closed, true)
  T.eq(connect_code(fwd.local_port, dir), 7, "a closed forward refuses connections")
  fwd:close()  -- twice is fine
  -- a port in use is a conflict; bad options are usage
  local other = s:forward(8080)
  T.raises("conflict", s.forward, s, 8080, { local_port = other.local_port })
  other:close()
  T.raises("usage", s.forward, s, 0)
  T.raises("usage", s.forward, s, 8080, { local_port = -1 })
  T.raises("usage", s.forward, s, 8080, { host = "not an address" })
  T.raises("usage", s.forward, s, 8080, { lcoal_port = 1 })
  -- a forward to a port where nothing listens: the connection is closed, counted as failed
  local dead = s:forward(9)
  local wait = fetch(dead.local_port, "/", dir, "dead")
  local code
  T.eventually(15, function() code = wait() return code ~= nil end, "the fetch through a dead forward")
  T.ok(code ~= 0, "curl failed")
  T.eventually(5, function() return dead:stats().failed == 1 end, "the failure to be counted")
  T.match(dead:stats().last_error, "connection refused")
  dead:close()
  os.execute("rm -rf " .. dir)
end)

T.test("forward: one opened in a task closes when the task ends, unless kept", function()
  local s = fresh("net-scope")
  web_server(s, 8080, { ["hello.txt"] = "scoped\n" })
  local dir = local_tmp()
  local port, kept
  sprites.spawn(function()
    port = s:forward(8080).local_port
    kept = s:forward(8080, { keep = true })
    T.eq(connect_code(port, dir) ~= 7, true, "open while the task runs")
  end):wait()
  T.eq(connect_code(port, dir), 7, "closed with its task")
  local wait = fetch(kept.local_port, "/hello.txt", dir, "kept")
  local code, body
  T.eventually(15, function() code, body = wait() return code ~= nil end, "the fetch through the kept forward")
  T.eq(code, 0)
  T.eq(body, "scoped\n")
  kept:close()
  T.eq(connect_code(kept.local_port, dir), 7)
  os.execute("rm -rf " .. dir)
end)

T.test("ports: the list first, then a server's port opened and closed; close ends the loop", function()
  local s = fresh("net-ports")
  s:run("true")
  local w = s:ports()
  local p = s:spawn { "python3", "-m", "http.server", "8091", "--bind", "127.0.0.1" }
  local opened
  for ev in w do
    if ev.port == 8091 then
      opened = ev
      break
    end
  end
  T.eq(opened.type, "opened")
  T.eq(opened.address, "127.0.0.1")
  T.eq(opened.pid, tonumber(p.session_id))
  -- a second watch lists it first
  local w2 = s:ports()
  local listed
  for ev in w2 do
    if ev.port == 8091 then listed = ev break end
  end
  T.eq(listed.type, "opened")
  w2:close()
  T.eq(w2:next(), nil, "a closed watch ends")
  p:kill()
  local closed
  for ev in w do
    if ev.port == 8091 then closed = ev break end
  end
  T.eq(closed.type, "closed")
  -- closing from another task ends a loop waiting in next()
  local ended = false
  local reader = sprites.spawn(function()
    for _ in w do end
    ended = true
  end)
  sprites.sleep(0.2)
  w:close()
  reader:wait()
  T.ok(ended, "the loop ended")
end)

T.done()
