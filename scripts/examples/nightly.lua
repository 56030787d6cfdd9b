-- nightly.lua: every night, on every sprite named PREFIX*, in parallel:
-- checkpoint, pull, run the agent, run the tests; restore on failure.
-- Prints a summary table and writes a JSON receipt of the run.
--
--   spritescript run scripts/examples/nightly.lua [prefix] [receipt.json] [--demo]
--
-- With --demo (what `make demo` runs) it first creates three demo sprites,
-- each with a small git project whose upstream lives in the sprite itself,
-- so the whole run works offline against the local engine. One of them has
-- a change upstream that breaks its tests: watch it being restored.
local prefix, receipt_path = "nightly-demo-", "nightly-receipt.json"
local demo = false
local positional = {}
for _, a in ipairs({ ... }) do
  if a == "--demo" then demo = true else positional[#positional + 1] = a end
end
prefix = positional[1] or prefix
receipt_path = positional[2] or receipt_path
local wf = sprites.workflow

-- The demo fleet: an upstream repository and a clone in each sprite.
local function set_up_demo(name, breaks)
  local s = sprites.create(name, { exist_ok = true })
  s:run([[
    set -e
    export HOME=/home/sprite GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
    export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
    rm -rf /home/sprite/upstream.git /home/sprite/app /home/sprite/seed
    git init -q --bare /home/sprite/upstream.git
    git init -q /home/sprite/seed && cd /home/sprite/seed
    printf 'add() { echo $(($1 + $2)); }\n' > lib.sh
    printf '. ./lib.sh\n[ "$(add 2 2)" = 4 ] && echo "tests: 1 passed"\n' > test.sh
    git add . && git commit -qm "first" && git push -q /home/sprite/upstream.git HEAD:main
    git clone -q -b main /home/sprite/upstream.git /home/sprite/app
  ]] .. (breaks and [[
    printf 'add() { echo $(($1 * $2 + 1)); }\n' > lib.sh
    git commit -qam "a change that breaks add" && git push -q /home/sprite/upstream.git HEAD:main
  ]] or ""), { check = true })
  return s
end

if demo then
  print("setting up the demo fleet...")
  sprites.parallel({ 1, 2, 3 }, function(i) set_up_demo(prefix .. i, i == 2) end, { limit = 3 })
end

local fleet = sprites.list(prefix)
if #fleet == 0 then
  print(("no sprites named %s*; run with --demo to create some"):format(prefix))
  return
end

local receipt = wf.receipt(receipt_path)

-- One sprite's night. Errors restore the checkpoint (checkpointed) and
-- become a failed row, not the end of the run.
local function nightly(s)
  local row = { sprite = s.name, steps = {} }
  local started = sprites.now()
  local ok, err = pcall(wf.checkpointed, s, { comment = "nightly " .. os.date("!%F") }, function(sp, cp)
    row.checkpoint = cp.id
    local env = { HOME = "/home/sprite" }
    local pull = sp:run({ "git", "pull", "-q", "--ff-only", dir = "/home/sprite/app", env = env })
    row.steps[#row.steps + 1] = { name = "pull", code = pull.code }
    if not pull.ok then error("git pull failed: " .. pull.stderr, 0) end
    -- The "agent": a real night would run e.g. `claude -p` here.
    local agent = sp:run("cd /home/sprite/app && echo \"# reviewed $(date -u +%F)\" >> NOTES.md",
      { timeout = 1800 })
    row.steps[#row.steps + 1] = { name = "agent", code = agent.code, seconds = agent.duration }
    local tests = sp:run("cd /home/sprite/app && sh test.sh", { timeout = 600 })
    row.steps[#row.steps + 1] = { name = "tests", code = tests.code, output = tests.stdout }
    return tests.ok
  end)
  row.seconds = sprites.now() - started
  if ok and row.checkpoint and #row.steps == 3 and row.steps[3].code == 0 then
    row.result = "ok"
  else
    row.result = "restored"
    row.error = ok and "tests failed" or tostring(err)
  end
  receipt:add(row)
  return row
end

local rows = sprites.parallel(fleet, nightly, { limit = 8 })

print(("%-22s %-9s %-6s %s"):format("sprite", "result", "secs", "note"))
local failed = 0
for _, row in ipairs(rows) do
  if row.result ~= "ok" then failed = failed + 1 end
  print(("%-22s %-9s %-6.1f %s"):format(row.sprite, row.result, row.seconds,
    row.result == "ok" and "" or ("restored to " .. tostring(row.checkpoint) .. ": " .. row.error)))
end
print(("%d sprites, %d ok, %d restored; receipt: %s"):format(#rows, #rows - failed, failed,
  receipt:write()))
