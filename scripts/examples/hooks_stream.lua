-- hooks_stream.lua: the "task" pattern. An agent runs detached in the
-- sprite and appends JSON events (its hooks) to a log file; the script
-- follows the log live, decodes the events, and answers the agent's
-- question by writing to its stdin.
--
--   spritescript run scripts/examples/hooks_stream.lua [sprite]
local name = ... or "hooks-demo"
local wf = sprites.workflow
local s = sprites.create(name, { exist_ok = true })
local log = "/home/sprite/agent/events.jsonl"
s:run("mkdir -p /home/sprite/agent && : > " .. log, { check = true })

-- A stand-in agent: emits events, asks a question, waits for the answer on
-- stdin, then finishes. A real one would be Claude Code with hooks that
-- append to the same file.
local agent = s:spawn { "sh", "-c", [[
  ev() { printf '%s\n' "$1" >> ]] .. log .. [[; }
  ev '{"type":"session_start","session":"demo"}'
  ev '{"type":"tool_use","tool":"Bash","input":"npm test"}'
  ev '{"type":"prompt","question":"Deploy to staging?"}'
  read answer
  ev "{\"type\":\"answer_received\",\"answer\":\"$answer\"}"
  ev '{"type":"stop","reason":"done"}'
]] }

local answered
sprites.timeout(60, function()
  for event in wf.jsonl(wf.tail(s, log)) do
    print(("event  %-16s %s"):format(event.type, event.tool or event.question or event.answer or event.reason or ""))
    if event.type == "prompt" then
      answered = "yes"
      agent:write(answered .. "\n")
      print("answer " .. answered)
    elseif event.type == "stop" then
      break
    end
  end
end)
print("agent exited with " .. agent:wait())
