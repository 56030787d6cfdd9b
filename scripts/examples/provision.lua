-- provision.lua: "cook" a sprite for an agent, idempotently, then keep a
-- golden checkpoint to come back to.
--
--   spritescript run scripts/examples/provision.lua [sprite] [--version V]
--
-- Steps (each through the API, offline against the local engine):
--   1. upload a tarball of tools built here and unpack it in the sprite;
--   2. clone a git repository: a bare repository made here is pushed into
--      the sprite through the filesystem API, then cloned there;
--   3. start the agent detached (setsid), its output captured in a log;
--   4. take the golden checkpoint ("bake <version>"); a second run finds it
--      and does nothing (workflow.bake), `workflow.reset` goes back to it.
local name, version = "provision-demo", "1"
local args = { ... }
local i = 1
while i <= #args do
  if args[i] == "--version" then version = args[i + 1]; i = i + 2 else name = args[i]; i = i + 1 end
end
local wf = sprites.workflow

local function sh(cmd)  -- runs a command here, on this machine
  local ok = os.execute(cmd)
  if ok ~= true and ok ~= 0 then error("local command failed: " .. cmd, 2) end
end

local work = os.tmpname()
os.remove(work)
sh("mkdir -p " .. work)

-- Local preparation: a tools tarball and a bare repository.
sh("mkdir -p " .. work .. "/tools/bin")
local agent = assert(io.open(work .. "/tools/bin/agent", "w"))
agent:write('#!/bin/sh\necho "agent: working on $(basename "$(pwd)")"\n',
  "while :; do date -u +%T; sleep 1; done\n")
agent:close()
sh("chmod 755 " .. work .. "/tools/bin/agent")
sh(("tar -czf %s/tools.tgz -C %s tools"):format(work, work))
sh(([[cd %s && git init -q seed && cd seed && git config user.email demo@example.com &&
  git config user.name demo && echo "# project" > README.md && git add . &&
  git commit -qm first && git clone -q --bare . ../project.git]]):format(work))

local s = sprites.create(name, { exist_ok = true })
local cp, made = wf.bake(s, {
  function(sp)
    local tarball = assert(io.open(work .. "/tools.tgz", "rb")):read("*a")
    sp:write_file("/home/sprite/tools.tgz", tarball)
    sp:run("tar -xzf /home/sprite/tools.tgz -C /home/sprite && rm /home/sprite/tools.tgz", { check = true })
  end,
  function(sp)
    sp:push(work .. "/project.git", "/home/sprite/upstream/project.git")
    sp:run("git clone -q /home/sprite/upstream/project.git /home/sprite/project", { check = true })
  end,
  function(sp)
    sp:run("cd /home/sprite/project && setsid nohup /home/sprite/tools/bin/agent " ..
      ">> /home/sprite/agent.log 2>&1 < /dev/null &", { check = true })
    sprites.sleep(1.2)
  end,
}, { version = version })
sh("rm -rf " .. work)

print(("%s: %s checkpoint %s (%s)"):format(s.name, made and "baked" or "already baked", cp.id, cp.comment))
print("agent log: " .. s:run("head -n 2 /home/sprite/agent.log").stdout:gsub("\n", " | "))
print("project: " .. s:run("cd /home/sprite/project && git log --oneline | head -1").stdout:gsub("%s+$", ""))
