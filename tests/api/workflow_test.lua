-- sprites.workflow against a real engine (tests/api/run.sh): retry rules,
-- parallel limits, bake/reset, hold, secrets, tail + jsonl, receipts.
local T = require "harness"
local wf = sprites.workflow
local errors = sprites.error

local n = 0
local function fresh(prefix)
  n = n + 1
  return sprites.create(("%s-%d-%d"):format(prefix, os.time() % 100000, n))
end

T.test("retry: transient kinds again, script errors and started agents not", function()
  local tries = 0
  local v = wf.retry({ attempts = 4, base = 0.01 }, function(attempt)
    tries = attempt
    if attempt < 3 then errors.raise("network", "flaky") end
    return "done"
  end)
  T.eq(v, "done"); T.eq(tries, 3)
  tries = 0
  local ok, err = pcall(wf.retry, { attempts = 4, base = 0.01 }, function(attempt)
    tries = attempt
    error("a bug in the script")
  end)
  T.ok(not ok); T.eq(tries, 1); T.match(err.message, "a bug")
  tries = 0
  ok, err = pcall(wf.retry, { attempts = 4, base = 0.01 }, function(attempt, started)
    tries = attempt
    started()  -- the agent is running: never twice
    errors.raise("network", "lost the connection")
  end)
  T.ok(not ok); T.eq(tries, 1); T.eq(err.kind, "network")
end)

T.test("parallel: results in order, at most `limit` at once, the first error wins", function()
  local running, peak = 0, 0
  local out = sprites.parallel({ 1, 2, 3, 4, 5, 6, 7, 8 }, function(x)
    running = running + 1
    peak = math.max(peak, running)
    sprites.sleep(0.02)
    running = running - 1
    return x * 10
  end, { limit = 3 })
  T.eq(#out, 8); T.eq(out[8], 80); T.eq(peak, 3)
  local ok, err = pcall(sprites.parallel, { 1, 2, 3 }, function(x)
    if x == 2 then error("item two failed") end
    sprites.sleep(0.05)
  end, { limit = 3 })
  T.ok(not ok); T.match(tostring(err), "item two failed")
end)

T.test("bake is idempotent and reset goes back to the golden checkpoint", function()
  local s = fresh("wf-bake")
  local runs = 0
  local steps = { "mkdir -p /home/sprite/tools && echo v1 > /home/sprite/tools/VERSION",
                  function() runs = runs + 1 end }
  local cp, made = wf.bake(s, steps, { version = "1" })
  T.ok(made); T.eq(runs, 1)
  local again, made_again = wf.bake(s, steps, { version = "1" })
  T.eq(made_again, false); T.eq(again.id, cp.id); T.eq(runs, 1)
  s:run("rm -rf /home/sprite/tools")
  wf.reset(s, { version = "1" })
  T.eq(s:run("cat /home/sprite/tools/VERSION").stdout, "v1\n")
  local ok, err = pcall(wf.reset, s, { version = "2" })
  T.eq(err.kind, "not_found")
  s:delete()
end)

T.test("secret_file writes 0600 through stdin; redact hides secrets", function()
  local s = fresh("wf-secret")
  wf.secret_file(s, "/home/sprite/.config/token", "s3cr3t-value")
  T.eq(s:run("stat -c %a /home/sprite/.config/token").stdout, "600\n")
  T.eq(s:run("cat /home/sprite/.config/token").stdout, "s3cr3t-value")
  T.eq(wf.redact("token=s3cr3t-value; again s3cr3t-value", { "s3cr3t-value" }), "token=***; again ***")
  s:delete()
end)

T.test("tail + jsonl follow an agent's event log live", function()
  local s = fresh("wf-tail")
  local agent = s:spawn { "sh", "-c",
    "for i in 1 2 3; do echo '{\"event\":\"step\",\"n\":'$i'}' >> /tmp/events.jsonl; " ..
    "echo 'plain text' >> /tmp/events.jsonl; sleep 0.1; done; " ..
    "echo '{\"event\":\"done\"}' >> /tmp/events.jsonl" }
  local seen = {}
  sprites.timeout(15, function()
    for event in wf.jsonl(wf.tail(s, "/tmp/events.jsonl")) do
      seen[#seen + 1] = event.event .. (event.n and tostring(event.n) or "")
      if event.event == "done" then break end
    end
  end)
  T.eq(table.concat(seen, ","), "step1,step2,step3,done")
  T.eq(agent:wait(), 0)
  s:delete()
end)

T.test("hold keeps a session open while work runs; receipts are JSON", function()
  local s = fresh("wf-hold")
  wf.hold(s, function(sp)
    local sessions = sp:run("ps -e -o comm= | grep -c '^sleep$'")
    T.eq(sessions.stdout, "1\n")
  end)
  sprites.sleep(0.3)
  T.eq(s:run("ps -e -o comm= | grep -c '^sleep$' || true").stdout, "0\n")
  local path = os.tmpname()
  local r = wf.receipt(path)
  r:add({ sprite = s.name, ok = true })
  r:write()
  local doc = sprites.json.decode(io.open(path):read("*a"))
  T.eq(doc.entries[1].sprite, s.name)
  os.remove(path)
  s:delete()
end)

T.test("workflow options are checked like the Sprite methods", function()
  local ok, err = pcall(wf.retry, { atempts = 2 }, function() end)
  T.eq(err.kind, "usage"); T.match(err.message, "atempts")
  ok, err = pcall(sprites.parallel, { 1 }, function() end, { limt = 2 })
  T.eq(err.kind, "usage"); T.match(err.message, "limt")
  ok, err = pcall(wf.retry, { attempts = 0 }, function() end)
  T.eq(err.kind, "usage")
end)

T.done()
