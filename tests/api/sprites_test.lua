-- The Sprites API from Lua (lua/stdlib/sprites/api.lua, workflow.lua)
-- against a real local engine (tests/api/run.sh starts it): sprites,
-- commands, processes, checkpoints, checkpointed workflows, and the errors
-- bad input gets.
local T = require "harness"
local errors = sprites.error

local unique = 0
local function fresh(prefix)
  unique = unique + 1
  return sprites.create(("%s-%d-%d"):format(prefix, os.time() % 100000, unique))
end

T.test("create, get, list by prefix, update labels, delete", function()
  local s = fresh("api-crud")
  T.eq(sprites.get(s.name).name, s.name)
  local found = false
  for _, x in ipairs(sprites.list("api-crud")) do found = found or x.name == s.name end
  T.ok(found, "list by prefix finds the sprite")
  s:update({ labels = { "nightly", "team-a" } })
  local other = fresh("api-crud")
  T.eq(#sprites.list { prefix = "api-crud", labels = { "nightly" } }, 1)
  T.eq(sprites.list({ labels = { "nightly", "team-a" } })[1].name, s.name)
  T.eq(#sprites.list { prefix = "api-crud", labels = { "nightly", "absent" } }, 0)
  T.eq(#sprites.list { prefix = "api-crud" }, 2)
  local ok_l, err_l = pcall(sprites.list, { prefx = "x" })
  T.eq(err_l.kind, "usage")
  other:delete()
  T.eq(s:update({ labels = { "nightly" } }).labels[1], "nightly")
  T.ok(sprites.create(s.name, { exist_ok = true }), "exist_ok returns the existing sprite")
  s:delete()
  local ok, err = pcall(sprites.get, s.name)
  T.ok(not ok)
  T.eq(err.kind, "not_found")
  T.eq(err.status, 404)
end)

T.test("run: exit codes are data, check raises, stdin, env, dir, timeout keeps output", function()
  local s = fresh("api-run")
  local r = s:run("echo out; echo err >&2; exit 3")
  T.eq(r.code, 3); T.eq(r.ok, false); T.eq(r.stdout, "out\n"); T.eq(r.stderr, "err\n")
  T.ok(r.duration > 0)
  local ok, err = pcall(s.run, s, { "false" }, { check = true })
  T.ok(not ok); T.eq(err.kind, "exit"); T.eq(err.code, 1)
  T.eq(s:run({ "cat" }, { stdin = "piped" }).stdout, "piped")
  T.eq(s:run({ "sh", "-c", "echo $GREETING", env = { GREETING = "hi" } }).stdout, "hi\n")
  T.eq(s:run({ "pwd", dir = "/tmp" }).stdout, "/tmp\n")
  local parts = { "a", "b", "c" }
  local i = 0
  T.eq(s:run({ "cat" }, { stdin = function() i = i + 1; return parts[i] end }).stdout, "abc")
  local t = s:run("echo started; sleep 30", { timeout = 0.5, grace = 0.5 })
  T.eq(t.timed_out, true); T.eq(t.ok, false); T.eq(t.stdout, "started\n")
  T.ok(t.duration < 10, "the timeout ended the command")
  s:delete()
end)

T.test("bad input: option typos, wrong types and empty commands name the problem", function()
  local s = sprites.sprite("not-even-created")
  local ok, err = pcall(s.run, s, "true", { timout = 1 })
  T.eq(err.kind, "usage"); T.match(err.message, "unknown option 'timout'")
  ok, err = pcall(s.run, s, {})
  T.eq(err.kind, "usage"); T.match(err.message, "empty")
  ok, err = pcall(s.run, s, 42)
  T.eq(err.kind, "usage")
  ok, err = pcall(sprites.create, "x", { lables = {} })
  T.eq(err.kind, "usage"); T.match(err.message, "lables")
  ok, err = pcall(s.run, s, "true")
  T.eq(err.kind, "not_found")
end)

T.test("spawn: lines as they come, stderr apart, stdin, wait", function()
  local s = fresh("api-spawn")
  local p = s:spawn { "sh", "-c", "for i in 1 2 3; do echo line $i; done; echo oops >&2; exit 4" }
  local lines = {}
  for line in p:lines() do lines[#lines + 1] = line end
  T.eq(table.concat(lines, ","), "line 1,line 2,line 3")
  local code, out, err = p:wait()
  T.eq(code, 4); T.eq(out, ""); T.eq(err, "oops\n")
  local cat = s:spawn { "cat" }
  T.ok(cat.session_id ~= "")
  cat:write("to cat\n")
  T.eq(cat:read(), "to cat\n")
  cat:close_stdin()
  T.eq(cat:wait(), 0)
  local sleeper = s:spawn { "sleep", "30" }
  sleeper:kill("KILL")
  T.eq(sleeper:wait(), 137)
  s:delete()
end)

T.test("checkpoints: objects with ids, progress in the task, restore waits until it answers", function()
  local s = fresh("api-ckpt")
  s:run("echo one > /home/sprite/f")
  local seen = {}
  local cp = s:checkpoint { comment = "first", on_progress = function(e) seen[#seen + 1] = e.type end }
  T.eq(cp.id, "v0"); T.eq(cp.comment, "first")
  T.eq(seen[#seen], "complete")
  s:run("echo two > /home/sprite/f")
  T.eq(#s:checkpoints(), 1)
  cp:restore()
  T.eq(s:run("cat /home/sprite/f").stdout, "one\n")
  T.eq(s:get_checkpoint("v0").current, true)
  local ok, err = pcall(s.restore, s, "v42")
  T.eq(err.kind, "not_found")
  s:delete()
end)

T.test("workflow.checkpointed restores on error, on false and on cancellation", function()
  local s = fresh("api-wf")
  s:run("echo good > /home/sprite/state")
  local wf = sprites.workflow
  -- error: restored, then re-raised with where it was restored to
  local ok, err = pcall(wf.checkpointed, s, { comment = "try 1" }, function(sp)
    sp:run("echo broken > /home/sprite/state")
    error("the agent failed")
  end)
  T.ok(not ok); T.match(err.message, "the agent failed"); T.ok(err.restored_to)
  T.eq(s:run("cat /home/sprite/state").stdout, "good\n")
  -- false: restored, keep_failed keeps the broken state as a checkpoint
  local result, failed = wf.checkpointed(s, { keep_failed = true }, function(sp)
    sp:run("echo broken > /home/sprite/state")
    return false
  end)
  T.eq(result, false); T.ok(failed and failed.id)
  T.eq(s:run("cat /home/sprite/state").stdout, "good\n")
  T.eq(s:run("cat /.sprite/checkpoints/" .. failed.id .. "/home/sprite/state").stdout, "broken\n")
  -- cancellation (a timeout scope): the restore still completes
  ok, err = pcall(sprites.timeout, 1, function()
    wf.checkpointed(s, function(sp)
      sp:run("echo broken > /home/sprite/state")
      sp:run("sleep 30")
    end)
  end)
  T.ok(not ok); T.eq(err.kind, "timeout")
  T.eq(s:run("cat /home/sprite/state").stdout, "good\n")
  -- success: the results come back, nothing restored
  T.eq(wf.checkpointed(s, function(sp) sp:run("echo better > /home/sprite/state"); return "done" end), "done")
  T.eq(s:run("cat /home/sprite/state").stdout, "better\n")
  s:delete()
end)

T.test("many commands at once in tasks", function()
  local s = fresh("api-par")
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = sprites.spawn(function() return s:run({ "echo", tostring(i) }).stdout end)
  end
  for i, t in ipairs(tasks) do T.eq(t:wait(), i .. "\n") end
  s:delete()
end)

T.test("a process ends with the task that spawned it, unless detached", function()
  local s = fresh("api-own")
  local t = sprites.spawn(function()
    s:spawn { "sleep", "301" }                -- never waited for
    local kept = s:spawn { "sleep", "302" }
    kept:detach()
  end)
  t:wait()
  local gone = false
  for _ = 1, 40 do
    local ps = s:run("ps -e -o args=").stdout
    if not ps:find("sleep 301", 1, true) then gone = true break end
    sprites.sleep(0.1)
  end
  T.ok(gone, "the task's process was ended with its scope")
  T.ok(s:run("ps -e -o args=").stdout:find("sleep 302", 1, true), "the detached one runs on")
  s:delete()
end)

T.done()
