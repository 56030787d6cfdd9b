-- A sprite's services and exec sessions from Lua (lua/stdlib/sprites/
-- services.lua) against a real local engine (tests/api/run.sh starts it):
-- a service's life with its events and logs, a service that cannot start,
-- sessions listed, attached and killed, and the errors bad input gets.
local T = require "harness"

local unique = 0
local function fresh(prefix)
  unique = unique + 1
  return sprites.create(("%s-%d-%d"):format(prefix, os.time() % 100000, unique))
end

local function types(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.type end
  return table.concat(out, ",")
end


T.test("a service's life: create with events, list, logs, stop, start, restart, signal, delete", function()
  local s = fresh("svc-life")
  T.same_table(s:services(), {})
  T.eq(s:service("web"), nil)
  local seen, in_task = {}, true
  local svc, events = s:create_service("web", {
    cmd = { "sh", "-c", "echo hello $GREETING from $(pwd); exec sleep 30" },
    env = { GREETING = "there" }, dir = "/tmp", duration = 1,
    on_event = function(e)
      seen[#seen + 1] = e.type
      in_task = in_task and sprites.current() ~= nil
    end,
  })
  T.eq(svc.name, "web"); T.eq(svc.cmd, "sh"); T.eq(svc.args[1], "-c"); T.eq(svc.dir, "/tmp")
  T.eq(svc.env.GREETING, "there")
  T.eq(svc.state.status, "running"); T.ok(svc.state.pid)
  T.eq(types(events), "started,stdout,complete")
  T.eq(table.concat(seen, ","), "started,stdout,complete", "on_event saw each event")
  T.ok(in_task, "on_event ran in the task")
  T.eq(events[2].message, "hello there from /tmp\n")
  T.ok(events[1].timestamp > 0, "events carry a timestamp")
  local list = s:services()
  T.eq(#list, 1); T.eq(list[1].name, "web"); T.eq(list[1].state.status, "running")
  -- logs: what was buffered; lines limits it
  local logs = s:service_logs("web")
  T.eq(logs[2].type, "stdout"); T.eq(logs[2].message, "hello there from /tmp\n")
  T.eq(logs[#logs].type, "complete")
  local last = s:service_logs("web", { lines = 1 })
  T.eq(types(last), "stdout,complete")
  -- stop: TERM, the exit, stopped
  local stopping = {}
  local stop = s:stop_service("web", { timeout = 2, on_event = function(e) stopping[#stopping + 1] = e.type end })
  T.eq(types(stop), "stopping,exit,stopped,complete")
  T.eq(table.concat(stopping, ","), types(stop))
  T.eq(stop[2].exit_code, 143)
  T.eq(s:service("web").state.status, "stopped")
  T.raises("conflict", s.stop_service, s, "web")
  -- start and restart
  T.eq(types(s:start_service("web", { duration = 0.5 })), "started,stdout,complete")
  T.eq(s:service("web").state.status, "running")
  local pid = s:service("web").state.pid
  local restarted = s:restart_service("web", { duration = 0.5 })
  T.match(types(restarted), "stopped,started,stdout,complete$")
  T.ok(s:service("web").state.pid ~= pid, "a new process")
  -- a TERM counts as a crash: restarted after the backoff
  s:signal_service("web", "TERM")
  T.eventually(5, function()
    local st = s:service("web").state
    return st.status == "running" and st.restart_count >= 1
  end, "the restart after the signal")
  -- delete
  s:delete_service("web")
  T.eq(s:service("web"), nil)
  T.raises("not_found", s.delete_service, s, "web")
  s:delete()
end)

T.test("a service that cannot start is defined, failed, with its error in the events", function()
  local s = fresh("svc-bad")
  local svc, events = s:create_service("bad", { cmd = "/no/such/program", duration = 0.5 })
  -- failed, and tried again after a second's backoff
  T.ok(svc.state.status == "failed" or svc.state.restart_count >= 1, "failed: " .. svc.state.status)
  T.match(types(events), "^started,stderr,exit")
  T.match(events[2].message, "not found")
  T.eq(events[3].exit_code, 127)
  -- needs: an unknown dependency is refused
  T.raises("usage", s.create_service, s, "child", { cmd = "true", needs = { "missing" } })
  s:delete()
end)

T.test("sessions: list a detached command, attach to it, kill it", function()
  local s = fresh("svc-sess")
  local p = s:spawn { "sh", "-c", "echo one; sleep 0.2; echo two; exec sleep 30" }
  T.eq(p:read(), "one\n")
  p:detach()
  local found
  for _, x in ipairs(s:sessions()) do
    if x.id == p.session_id then found = x end
  end
  T.ok(found, "the detached session is listed")
  T.match(found.command, "^sh %-c echo one")
  T.eq(found.tty, false); T.eq(found.workdir, "/home/sprite"); T.ok(found.created ~= "")
  local a = s:attach(found)  -- a session table, or its id
  T.eq(a.session_id, p.session_id)
  T.match(a.command[1], "^sh %-c")
  local out = {}
  for line in a:lines() do
    out[#out + 1] = line
    if line == "two" then break end
  end
  T.eq(table.concat(out, ","), "one,two", "the kept output, then the new")
  local seen = {}
  local events = s:kill_session(p.session_id, { signal = "KILL", on_event = function(e) seen[#seen + 1] = e end })
  T.ok(#events > 0); T.eq(#seen, #events)
  T.eq(a:wait(), 137)
  -- a finished session: the kill stream is empty; attaching fails
  T.same_table(s:kill_session(p.session_id), {})
  T.raises("not_found", s.attach, s, "999999")
  s:delete()
end)

T.test("bad input: option typos and wrong types name the problem", function()
  local s = sprites.sprite("not-even-created")
  local err = T.raises("usage", s.create_service, s, "x", { command = "sleep" })
  T.match(err.message, "unknown option 'command'")
  err = T.raises("usage", s.create_service, s, "x", { args = { "1" } })
  T.match(err.message, "cmd")
  T.raises("usage", s.create_service, s, "x", { cmd = "sleep", duration = "5s" })
  T.raises("usage", s.create_service, s, "x", { cmd = "sleep", on_event = "print" })
  T.raises("usage", s.create_service, s, "x", { cmd = { "sleep", "1" }, args = { "2" } })
  err = T.raises("usage", s.stop_service, s, "x", { timout = 1 })
  T.match(err.message, "timout")
  T.raises("usage", s.service_logs, s, "x", { line = 3 })
  T.raises("usage", s.kill_session, s, "1", { sig = "KILL" })
  T.raises("usage", s.attach, s, nil)
  T.raises("usage", s.service, s, 42)
  T.raises("not_found", s.services, s)  -- no such sprite
end)

T.done()
