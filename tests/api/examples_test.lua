-- The example workflows (scripts/examples) run against a fresh engine, as a
-- user would run them, and do what they say.
local T = require "harness"

local function here()
  return (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".")
end
local examples = here() .. "/../../scripts/examples/"

-- Runs an example's main chunk in this process with arguments.
local function run_example(file, ...)
  local chunk = assert(loadfile(examples .. file))
  local out = {}
  local real_print = print
  print = function(...)  -- luacheck: ignore
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    out[#out + 1] = table.concat(parts, "\t")
  end
  local ok, err = pcall(chunk, ...)
  print = real_print  -- luacheck: ignore
  if not ok then error(err, 0) end
  return table.concat(out, "\n")
end

T.test("agent_restore_on_failure: success keeps the agent's work", function()
  local out = run_example("agent_restore_on_failure.lua", "ex-agent-ok")
  T.match(out, 'VERSION is now "v2 %(edited by the agent%)"')
  sprites.delete("ex-agent-ok")
end)

T.test("agent_restore_on_failure: failure restores and keeps the failed state", function()
  local out = run_example("agent_restore_on_failure.lua", "ex-agent-fail", "fail")
  T.match(out, 'VERSION is back to "v1"')
  local failed = out:match("the failed state is checkpoint (%S+)")
  T.ok(failed and failed ~= "nil", "a checkpoint of the failed state")
  local s = sprites.get("ex-agent-fail")
  T.eq(s:run("cat /.sprite/checkpoints/" .. failed .. "/home/sprite/project/VERSION").stdout,
    "v2 (edited by the agent)\n")
  s:delete()
end)

T.test("nightly --demo: two sprites ok, the broken one restored, a receipt written", function()
  local receipt = os.tmpname()
  local out = run_example("nightly.lua", "ex-nightly-", receipt, "--demo")
  T.match(out, "ex%-nightly%-1%s+ok")
  T.match(out, "ex%-nightly%-2%s+restored%s.*restored to v%d+: tests failed")
  T.match(out, "3 sprites, 2 ok, 1 restored")
  local doc = sprites.json.decode(io.open(receipt):read("*a"))
  T.eq(#doc.entries, 3)
  os.remove(receipt)
  -- The restore really happened: the agent's note is gone from the broken one.
  local s = sprites.get("ex-nightly-2")
  T.eq(s:run("test -e /home/sprite/app/NOTES.md").code, 1)
  for i = 1, 3 do sprites.delete("ex-nightly-" .. i) end
end)

T.test("lifecycle --yes: every step, then the sprite is gone", function()
  local out = run_example("lifecycle.lua", "ex-life", "--yes")
  T.match(out, "checkpt  v0 after the greeting")
  T.match(out, "restored v0: greeting says hello")
  T.match(out, "url      http://ex%-life%.localhost:%d+")
  T.match(out, "deleted  ex%-life")
  local ok, err = pcall(sprites.get, "ex-life")
  T.eq(err.kind, "not_found")
end)

T.test("fleet_report: 20 sprites, at most 5 at once", function()
  local out = run_example("fleet_report.lua", "ex-fleet-", "--create", "20", "--limit", "5")
  T.match(out, "20 sprites in [%d.]+ s, at most 5 at once, 0 failed")
  for _, s in ipairs(sprites.list("ex-fleet-")) do s:delete() end
end)

T.test("hooks_stream: events decoded live and the prompt answered through stdin", function()
  local out = run_example("hooks_stream.lua", "ex-hooks")
  T.match(out, "event  tool_use%s+Bash")
  T.match(out, "answer yes")
  T.match(out, "event  answer_received%s+yes")
  T.match(out, "agent exited with 0")
  sprites.delete("ex-hooks")
end)

T.test("provision: tools unpacked, repository cloned, agent logging, baked once", function()
  local out = run_example("provision.lua", "ex-prov")
  T.match(out, "ex%-prov: baked checkpoint v%d+ %(bake 1%)")
  T.match(out, "agent log: agent: working on project")
  T.match(out, "project: %x+ first")
  local again = run_example("provision.lua", "ex-prov")
  T.match(again, "already baked")
  local s = sprites.get("ex-prov")
  s:run("rm -rf /home/sprite/project")
  sprites.workflow.reset(s, { version = "1" })
  T.eq(s:run("cat /home/sprite/project/README.md").stdout, "# project\n")
  s:delete()
end)

T.done()
