-- The Lua API of spritescript, described as data: the one source of
-- docs/lua-reference.md and meta/sprites.lua (LuaLS type stubs), both
-- written by tools/gen_lua_docs.lua. tests/lua/docs_test.lua checks that
-- every function and method scripts can reach is described here (and that
-- nothing described here has gone), and that the generated files are fresh.
--
-- After editing: build/spritescript run tools/gen_lua_docs.lua
--
-- Shape (types are LuaLS syntax: string, integer, number, boolean, table,
-- fun(x: T): R, T[], A|B, class names such as sprites.Sprite):
--
--   sections = { {
--     name = "sprites.Sprite",        -- module path or class name
--     kind = "module" | "class" | "type",
--                                     -- module: a table of functions;
--                                     -- class: objects with methods (var: the
--                                     -- name examples give an instance);
--                                     -- type: a plain table the API returns
--     summary = "one line", description = "markdown (optional)",
--     fields = { { name, type, optional?, description } },
--     functions = { {
--       name, summary, description?, group? (a subheading in the reference),
--       params = { { name, type, optional?, description } },
--       options = { class = "sprites.XOptions", param = "opts",
--                   { name, type, description }, ... },
--       returns = { { type, name?, description } },
--       errors = { kind or error group, ... },
--       overloads = { "fun(...): any" },   -- other ways to call it (LuaLS)
--       example = "lua code",
--     } },
--   } }
--
-- Error kinds are those of sprites.error.exit_codes (docs/errors.md); the
-- groups below stand for kinds many calls share.

local error_groups = {
  { name = "API", summary = "a request to Sprites (or the local engine) failed",
    kinds = { "unauthorized", "network", "protocol", "rate_limited", "capacity", "api" } },
  { name = "WAIT", summary = "the call waits, so cancelling its task interrupts it (docs/tasks.md)",
    kinds = { "cancelled", "timeout", "interrupted" } },
}

---------------------------------------------------------------------------
-- Shared option and result shapes
---------------------------------------------------------------------------
local on_progress = { name = "on_progress", type = "fun(event: sprites.StreamEvent)",
  description = "called in the task for each progress line as it comes; an `error` line raises" }
local on_event = { name = "on_event", type = "fun(event: sprites.StreamEvent)",
  description = "called in the task for each event as it comes" }

local start_options = {
  class = "sprites.ServiceStartOptions", param = "opts",
  { name = "duration", type = "number", description = "seconds of events to wait for (server default 5; 0: none)" },
  on_event,
}

local events_return = { type = "sprites.StreamEvent[]", name = "events", description = "every event received" }

local process_methods_note = "The process belongs to the task that made it: when that task's scope ends and the " ..
  "process still runs, it is ended (TERM, then KILL two seconds later) unless `p:detach()` was called."

local sections = {}
local function section(s) sections[#sections + 1] = s end

---------------------------------------------------------------------------
-- sprites
---------------------------------------------------------------------------
section {
  name = "sprites", kind = "module",
  summary = "The module scripts use: tasks and time, the Sprites API, and the json, error and workflow modules.",
  description = "Also the global `sprites`, and `require \"sprites\"`. The task functions are those of " ..
    "`sprites.task` ([tasks.md](tasks.md)); every call that waits suspends only the calling task.",
  fields = {
    { name = "json", type = "sprites.json", description = "JSON encoding and decoding" },
    { name = "error", type = "sprites.error", description = "structured errors and exit codes" },
    { name = "workflow", type = "sprites.workflow", description = "patterns around agents (loaded on first use)" },
  },
  functions = {
    -- tasks and time
    { name = "spawn", group = "Tasks and time",
      summary = "Runs `fn(...)` as a child task of the current task, at once until its first wait.",
      description = "The child belongs to the spawning task, which does not end before its children do. " ..
        "A child's error nobody waits for is raised in the parent at its next wait.",
      params = {
        { name = "fn", type = "fun(...): any", description = "the task's body" },
        { name = "...", type = "any", description = "arguments for `fn`" },
      },
      returns = { { type = "sprites.Task", name = "task", description = "the new task" } },
      errors = {},
      example = [[
local t = sprites.spawn(function(name) return sprites.get(name):status() end, "dev")
print(t:wait())]] },
    { name = "sleep", group = "Tasks and time",
      summary = "Waits `seconds`; `sleep(0)` lets every other ready task run first.",
      params = { { name = "seconds", type = "number", description = "how long (floats welcome)" } },
      returns = {},
      errors = { "usage", "WAIT" },
      example = "sprites.sleep(0.5)" },
    { name = "timeout", group = "Tasks and time",
      summary = "Runs `fn(...)` in the current task with a deadline.",
      description = "When the time runs out, the wait `fn` is in raises a `timeout` error (and every later " ..
        "wait inside `fn`), and the tasks `fn` spawned are cancelled. Timeouts nest.",
      params = {
        { name = "seconds", type = "number", description = "the deadline, from now" },
        { name = "fn", type = "fun(...): any", description = "the code to run" },
        { name = "...", type = "any", description = "arguments for `fn`" },
      },
      returns = { { type = "any", name = "...", description = "`fn`'s results" } },
      errors = { "usage", "WAIT" },
      example = [[
local r = sprites.timeout(600, function() return s:run("npm test") end)]] },
    { name = "shield", group = "Tasks and time",
      summary = "Runs `fn(...)` without being interrupted by cancellation (for cleanup that must wait).",
      params = {
        { name = "fn", type = "fun(...): any", description = "the code to run" },
        { name = "...", type = "any", description = "arguments for `fn`" },
      },
      returns = { { type = "any", name = "...", description = "`fn`'s results" } },
      errors = {},
      example = "sprites.shield(function() s:restore(cp) end)" },
    { name = "wait_any", group = "Tasks and time",
      summary = "Waits for the first of the tasks to end; a failure is reported as `ok == false`, never raised.",
      params = {
        { name = "tasks", type = "sprites.Task[]", description = "the tasks to wait for" },
        { name = "timeout", type = "number", optional = true, description = "seconds; then a `timeout` error (the tasks keep running)" },
      },
      returns = {
        { type = "sprites.Task", name = "task", description = "the task that ended" },
        { type = "boolean", name = "ok", description = "whether it succeeded" },
        { type = "any", name = "...", description = "its results, or its error" },
      },
      errors = { "usage", "WAIT" },
      example = "local t, ok, result = sprites.wait_any { a, b }" },
    { name = "wait_all", group = "Tasks and time",
      summary = "Waits for all the tasks; returns each task's first result in order and raises the first failure.",
      params = {
        { name = "tasks", type = "sprites.Task[]", description = "the tasks to wait for" },
        { name = "timeout", type = "number", optional = true, description = "seconds; then a `timeout` error (the tasks keep running)" },
      },
      returns = { { type = "any[]", name = "results", description = "the first result of each task, in order" } },
      errors = { "WAIT" },
      example = "local results = sprites.wait_all(checks)" },
    { name = "event", group = "Tasks and time",
      summary = "Makes an event: `event:set()` wakes every `event:wait()`.",
      params = {},
      returns = { { type = "sprites.Event", name = "event", description = "a new event, not set" } },
      errors = {},
      example = [[
local ready = sprites.event()
sprites.spawn(function() ready:wait(); print("go") end)
ready:set()]] },
    { name = "now", group = "Tasks and time",
      summary = "Monotonic seconds, for measuring durations.",
      params = {},
      returns = { { type = "number", name = "seconds", description = "a monotonic clock reading" } },
      errors = {} },
    { name = "current", group = "Tasks and time",
      summary = "The running task.",
      params = {},
      returns = { { type = "sprites.Task|nil", name = "task", description = "the running task, nil outside tasks" } },
      errors = {} },
    { name = "defer", group = "Tasks and time",
      summary = "Runs `fn()` when the current task's scope ends (after its children), however it ends; newest first.",
      description = "`fn` must not wait. Processes a task spawns are closed this way unless detached.",
      params = { { name = "fn", type = "fun()", description = "the cleanup" } },
      returns = { { type = "fun()", name = "cancel", description = "removes the registration" } },
      errors = {},
      example = [[
local f = assert(io.open("log.txt", "w"))
sprites.defer(function() f:close() end)]] },
    -- the Sprites API
    { name = "create", group = "Sprites",
      summary = "Creates a sprite.",
      params = {
        { name = "name", type = "string", description = "the sprite's name" },
        { name = "opts", type = "sprites.CreateOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.CreateOptions", param = "opts",
        { name = "labels", type = "string[]", description = "labels of the sprite" },
        { name = "url_auth", type = "\"sprite\"|\"public\"", description = "who may open the sprite's URL" },
        { name = "wait_for_capacity", type = "boolean", description = "wait for capacity instead of failing with `capacity`" },
        { name = "exist_ok", type = "boolean", description = "an existing sprite is returned instead of a `conflict` error" },
      },
      returns = { { type = "sprites.Sprite", name = "sprite", description = "the new (or existing) sprite" } },
      errors = { "usage", "conflict", "API", "WAIT" },
      example = [[local s = sprites.create("dev-main", { exist_ok = true, labels = { "dev" } })]] },
    { name = "get", group = "Sprites",
      summary = "Fetches a sprite by name.",
      params = { { name = "name", type = "string", description = "the sprite's name" } },
      returns = { { type = "sprites.Sprite", name = "sprite", description = "the sprite, with `info` filled in" } },
      errors = { "not_found", "API", "WAIT" },
      example = [[local s = sprites.get("dev-main")]] },
    { name = "sprite", group = "Sprites",
      summary = "A handle on a sprite by name, without a request.",
      params = { { name = "name", type = "string", description = "the sprite's name" } },
      returns = { { type = "sprites.Sprite", name = "sprite", description = "a handle (`info` is nil)" } },
      errors = { "usage" },
      example = [[local s = sprites.sprite("dev-main")]] },
    { name = "list", group = "Sprites",
      summary = "Lists the sprites (every page): those whose name starts with `prefix`, and with `labels` those carrying every label given.",
      params = { { name = "filter", type = "string|{prefix: string?, labels: string[]?}", optional = true, description = "a name prefix, or `{prefix=, labels=}`" } },
      returns = { { type = "sprites.Sprite[]", name = "sprites", description = "the sprites" } },
      errors = { "API", "WAIT" },
      example = [[for _, s in ipairs(sprites.list("ci-")) do print(s.name) end]] },
    { name = "delete", group = "Sprites",
      summary = "Deletes a sprite by name.",
      params = { { name = "name", type = "string", description = "the sprite's name" } },
      returns = {},
      errors = { "not_found", "API", "WAIT" } },
    { name = "parallel", group = "Sprites",
      summary = "`sprites.workflow.parallel`: `fn(item, i)` for every item, at most `limit` at once.",
      params = {
        { name = "items", type = "any[]", description = "the items" },
        { name = "fn", type = "fun(item: any, i: integer): any", description = "called for each item in its own task" },
        { name = "opts", type = "sprites.ParallelOptions", optional = true, description = "options" },
      },
      returns = { { type = "any[]", name = "results", description = "`fn`'s first result for each item, in order" } },
      errors = { "WAIT" },
      example = [[local codes = sprites.parallel(sprites.list("ci-"), function(s) return s:run("make").code end)]] },
  },
}

---------------------------------------------------------------------------
-- Tasks and events
---------------------------------------------------------------------------
section {
  name = "sprites.Task", kind = "class", var = "task",
  summary = "A task: a coroutine driven by the event loop ([tasks.md](tasks.md)); made by `sprites.spawn`.",
  functions = {
    { name = "wait", summary = "Waits for the task; returns its results or raises its error.",
      params = { { name = "timeout", type = "number", optional = true, description = "seconds; then a `timeout` error (the task keeps running)" } },
      returns = { { type = "any", name = "...", description = "the task's results" } },
      errors = { "usage", "WAIT", "the task's own error" },
      example = "local status = t:wait(30)" },
    { name = "pwait", summary = "Waits for the task; returns `true, results...` or `false, err` instead of raising its error.",
      params = { { name = "timeout", type = "number", optional = true, description = "seconds; then `false` and a `timeout` error" } },
      returns = {
        { type = "boolean", name = "ok", description = "whether the task succeeded" },
        { type = "any", name = "...", description = "its results, or its error" },
      },
      errors = { "usage", "WAIT" },
      example = "local ok, err = t:pwait()" },
    { name = "cancel", summary = "Cancels the task and its children: each sees a `cancelled` error where it waits.",
      params = { { name = "message", type = "string", optional = true, description = "added to the error's message" } },
      returns = {}, errors = {} },
    { name = "detach", summary = "Detaches the task from its parent: the parent does not wait for it; its errors are reported at exit.",
      params = {},
      returns = { { type = "sprites.Task", name = "task", description = "the task itself" } },
      errors = {} },
    { name = "status", summary = "The task's state.",
      params = {},
      returns = { { type = "\"running\"|\"ready\"|\"waiting\"|\"ok\"|\"failed\"|\"cancelled\"", name = "status", description = "where the task is" } },
      errors = {} },
  },
}

section {
  name = "sprites.Event", kind = "class", var = "event",
  summary = "An event tasks can wait for; made by `sprites.event()`.",
  fields = { { name = "is_set", type = "boolean", description = "whether `set` was called" } },
  functions = {
    { name = "set", summary = "Sets the event, waking every task waiting on it (once; later calls do nothing).",
      params = {}, returns = {}, errors = {} },
    { name = "wait", summary = "Waits until the event is set; returns at once when it is.",
      params = { { name = "timeout", type = "number", optional = true, description = "seconds; then a `timeout` error" } },
      returns = {}, errors = { "usage", "WAIT" } },
  },
}

---------------------------------------------------------------------------
-- Sprite
---------------------------------------------------------------------------
local run_options = {
  class = "sprites.RunOptions", param = "opts",
  { name = "dir", type = "string", description = "working directory (default `/home/sprite`)" },
  { name = "env", type = "table<string, string>", description = "replaces the environment (`PATH`, `HOME`, `USER`, `LANG` are added when not given)" },
  { name = "stdin", type = "string|fun(): string?", description = "the input: a string, or an iterator returning pieces then nil" },
  { name = "tty", type = "boolean", description = "run in a terminal" },
  { name = "cols", type = "integer", description = "the terminal's width" },
  { name = "rows", type = "integer", description = "the terminal's height" },
  { name = "timeout", type = "number", description = "seconds; then TERM, and KILL after `grace`; the output so far is kept and `timed_out` is true" },
  { name = "grace", type = "number", description = "seconds between TERM and KILL after a timeout (default 5)" },
  { name = "check", type = "boolean", description = "raise an `exit` error (with `code` and `result`) when the command does not succeed" },
}

section {
  name = "sprites.Sprite", kind = "class", var = "s",
  summary = "A sprite: from `sprites.create`, `sprites.get`, `sprites.list` or `sprites.sprite`.",
  description = "Every method that makes a request waits in the calling task only. Option tables are checked: " ..
    "an unknown option name is a `usage` error listing the known ones. Paths in the sprite are absolute, " ..
    "or relative to `/`; filesystem failures carry the errno name in `code` (`ENOENT` is `not_found`; " ..
    "`EEXIST`, `ENOTEMPTY` `conflict`; `EINVAL`, `ENOTDIR`, `EISDIR` `usage`). Modes are an octal string " ..
    "(`\"0644\"`) or the mode's value as a number (420).",
  fields = {
    { name = "name", type = "string", description = "the sprite's name" },
    { name = "info", type = "sprites.SpriteInfo", optional = true, description = "the last fetched fields (nil for a `sprites.sprite` handle until a fetch)" },
  },
  functions = {
    { name = "refresh", group = "The sprite",
      summary = "Fetches the sprite's fields again.",
      params = {},
      returns = { { type = "sprites.SpriteInfo", name = "info", description = "the fields, also stored in `s.info`" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "status", group = "The sprite",
      summary = "Fetches the sprite's status (`running`, `warm`, `cold`...).",
      params = {},
      returns = { { type = "string", name = "status", description = "the status" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "url", group = "The sprite",
      summary = "The sprite's URL (from `s.info`, fetched when there is none yet).",
      params = {},
      returns = { { type = "string", name = "url", description = "the URL" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "update", group = "The sprite",
      summary = "Changes the sprite's labels or URL access.",
      params = { { name = "opts", type = "sprites.UpdateOptions", description = "what to change" } },
      options = {
        class = "sprites.UpdateOptions", param = "opts",
        { name = "labels", type = "string[]", description = "replaces the set of labels" },
        { name = "url_auth", type = "\"sprite\"|\"public\"", description = "who may open the sprite's URL" },
      },
      returns = { { type = "sprites.SpriteInfo", name = "info", description = "the new fields, also stored in `s.info`" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[s:update { labels = { "dev", "team-a" } }]] },
    { name = "restart", group = "The sprite",
      summary = "Restarts the sprite.",
      params = {},
      returns = { { type = "string", name = "text", description = "the server's answer" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "check", group = "The sprite",
      summary = "Asks the server to check the sprite.",
      params = {},
      returns = { { type = "string", name = "text", description = "the server's answer" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "delete", group = "The sprite",
      summary = "Deletes the sprite.",
      params = {}, returns = {},
      errors = { "not_found", "API", "WAIT" } },
    -- commands
    { name = "run", group = "Commands",
      summary = "Runs a command to its end and returns its result; a non-zero exit is data unless `check = true`.",
      description = "Options may also sit in the argv table (`s:run{\"git\", \"pull\", dir = \"/src\"}`). " ..
        "Cancelling the task ends the command in the sprite too.",
      params = {
        { name = "cmd", type = "string|table", description = "a string (run with `bash -lc`) or an argv array" },
        { name = "opts", type = "sprites.RunOptions", optional = true, description = "options" },
      },
      options = run_options,
      returns = { { type = "sprites.RunResult", name = "result", description = "the exit code and output" } },
      errors = { "usage", "exit", "not_found", "API", "WAIT" },
      example = [[
local r = s:run("npm test", { dir = "/home/sprite/app", timeout = 600 })
print(r.code, r.ok, r.stdout)]] },
    { name = "spawn", group = "Commands",
      summary = "Starts a command for streaming: read its output as it comes, write its input.",
      description = process_methods_note,
      params = {
        { name = "cmd", type = "string|table", description = "a string (run with `bash -lc`) or an argv array" },
        { name = "opts", type = "sprites.SpawnOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.SpawnOptions", param = "opts",
        run_options[1], run_options[2], run_options[4], run_options[5], run_options[6],
      },
      returns = { { type = "sprites.Process", name = "process", description = "the running command" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[
local p = s:spawn("npm run dev", { dir = "/home/sprite/app" })
for line in p:lines() do if line:find("ready") then break end end]] },
    -- checkpoints
    { name = "checkpoint", group = "Checkpoints",
      summary = "Takes a checkpoint of the sprite.",
      params = { { name = "opts", type = "string|sprites.CheckpointOptions", optional = true, description = "options, or just the comment" } },
      options = {
        class = "sprites.CheckpointOptions", param = "opts",
        { name = "comment", type = "string", description = "the checkpoint's comment" },
        on_progress,
      },
      returns = { { type = "sprites.Checkpoint", name = "checkpoint", description = "the new checkpoint" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[local cp = s:checkpoint { comment = "before the agent", on_progress = print }]] },
    { name = "checkpoints", group = "Checkpoints",
      summary = "Lists the sprite's checkpoints, newest first.",
      params = { { name = "opts", type = "sprites.CheckpointsOptions", optional = true, description = "options" } },
      options = {
        class = "sprites.CheckpointsOptions", param = "opts",
        { name = "auto", type = "boolean", description = "list the automatic checkpoints only" },
      },
      returns = { { type = "sprites.Checkpoint[]", name = "checkpoints", description = "newest first" } },
      errors = { "usage", "not_found", "API", "WAIT" } },
    { name = "get_checkpoint", group = "Checkpoints",
      summary = "Fetches one checkpoint by id.",
      params = { { name = "id", type = "string", description = "the checkpoint's id" } },
      returns = { { type = "sprites.Checkpoint", name = "checkpoint", description = "the checkpoint" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "restore", group = "Checkpoints",
      summary = "Restores a checkpoint; returns once the sprite runs a command again (30 s at most).",
      params = {
        { name = "checkpoint", type = "sprites.Checkpoint|string", description = "a checkpoint or its id" },
        { name = "opts", type = "sprites.RestoreOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.RestoreOptions", param = "opts",
        on_progress,
        { name = "wait", type = "boolean", description = "`false`: return as soon as the restore is done, without waiting for the sprite to answer" },
      },
      returns = {},
      errors = { "usage", "not_found", "timeout", "protocol", "API", "WAIT" },
      example = "s:restore(cp)" },
    { name = "delete_checkpoint", group = "Checkpoints",
      summary = "Deletes a checkpoint.",
      params = { { name = "checkpoint", type = "sprites.Checkpoint|string", description = "a checkpoint or its id" } },
      returns = {},
      errors = { "not_found", "API", "WAIT" } },
    -- files
    { name = "read_file", group = "Files",
      summary = "Reads a whole file (binary-safe, up to 1 GiB; `s:open` for bigger ones).",
      params = { { name = "path", type = "string", description = "the file" } },
      returns = { { type = "string", name = "data", description = "its contents" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[local text = s:read_file("/home/sprite/app/package.json")]] },
    { name = "write_file", group = "Files",
      summary = "Creates or replaces a file, atomically (a temporary file renamed over `path`).",
      params = {
        { name = "path", type = "string", description = "the file" },
        { name = "data", type = "string", description = "its new contents" },
        { name = "opts", type = "sprites.WriteFileOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.WriteFileOptions", param = "opts",
        { name = "mode", type = "string|integer", description = "the file's mode; without it a rewritten file keeps its mode and a new one is 0644" },
        { name = "mkdir", type = "boolean", description = "make missing parents (default `true`; `false`: a missing parent is `not_found`)" },
      },
      returns = { { type = "sprites.WriteResult", name = "written", description = "`{path, size, mode}`" } },
      errors = { "usage", "not_found", "conflict", "API", "WAIT" },
      example = [[s:write_file("/home/sprite/app/.env", "TOKEN=x\n", { mode = "0600" })]] },
    { name = "open", group = "Files",
      summary = "Opens a file for reading piece by piece (the engine sends up to 4 MiB at a time).",
      description = "Reads have no deadline of their own: put them in `sprites.timeout`.",
      params = { { name = "path", type = "string", description = "the file" } },
      returns = { { type = "sprites.Reader", name = "reader", description = "the open file" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[
local r, out = s:open("/var/log/big.log"), assert(io.open("big.log", "wb"))
for piece in r:pieces() do out:write(piece) end
out:close()]] },
    { name = "list", group = "Files",
      summary = "A directory's children (all descendants with `recursive`), sorted by path; a file gives its own entry.",
      params = {
        { name = "path", type = "string", description = "the directory" },
        { name = "opts", type = "sprites.ListOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.ListOptions", param = "opts",
        { name = "recursive", type = "boolean", description = "all descendants" },
        { name = "pattern", type = "string", description = "a shell glob on the name (`\"*.txt\"`), or with a `/` on the path below `path` (`\"sub/*\"`)" },
      },
      returns = { { type = "sprites.Entry[]", name = "entries", description = "sorted by path" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[for _, e in ipairs(s:list("/home/sprite/logs", { pattern = "*.log" })) do print(e.path, e.size) end]] },
    { name = "stat", group = "Files",
      summary = "The entry of `path` itself (a symlink is the link); nil when nothing is there.",
      params = { { name = "path", type = "string", description = "the path" } },
      returns = { { type = "sprites.Entry|nil", name = "entry", description = "the entry, or nil" } },
      errors = { "usage", "API", "WAIT" } },
    { name = "exists", group = "Files",
      summary = "Whether something is at `path`.",
      params = { { name = "path", type = "string", description = "the path" } },
      returns = { { type = "boolean", name = "exists", description = "whether there is an entry" } },
      errors = { "usage", "API", "WAIT" } },
    { name = "remove", group = "Files",
      summary = "Removes a file, symlink or empty directory; a whole tree with `recursive`.",
      params = {
        { name = "path", type = "string", description = "what to remove" },
        { name = "opts", type = "sprites.RemoveOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.RemoveOptions", param = "opts",
        { name = "recursive", type = "boolean", description = "remove a directory and everything in it (else a non-empty one is `conflict`, `ENOTEMPTY`)" },
      },
      returns = { { type = "string[]", name = "removed", description = "the removed paths, parents first" } },
      errors = { "usage", "not_found", "conflict", "API", "WAIT" } },
    { name = "rename", group = "Files",
      summary = "Renames (moves) a file or directory.",
      params = {
        { name = "from", type = "string", description = "the source" },
        { name = "to", type = "string", description = "the destination" },
      },
      returns = { { type = "sprites.Move", name = "moved", description = "`{source, dest}`" } },
      errors = { "usage", "not_found", "conflict", "API", "WAIT" } },
    { name = "copy", group = "Files",
      summary = "Copies as `cp` does: into `to` when it is a directory.",
      params = {
        { name = "from", type = "string", description = "the source" },
        { name = "to", type = "string", description = "the destination" },
        { name = "opts", type = "sprites.CopyOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.CopyOptions", param = "opts",
        { name = "recursive", type = "boolean", description = "copy a directory (else it is a `usage` error)" },
        { name = "preserve", type = "boolean", description = "keep owner and times" },
      },
      returns = { { type = "sprites.CopyResult", name = "copied", description = "`{copied = {{source, dest}...}, total_bytes}`" } },
      errors = { "usage", "not_found", "conflict", "API", "WAIT" } },
    { name = "chmod", group = "Files",
      summary = "Changes a path's mode.",
      params = {
        { name = "path", type = "string", description = "the path" },
        { name = "mode", type = "string|integer", description = "an octal string (`\"0755\"`) or the mode's value" },
        { name = "opts", type = "sprites.ChmodOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.ChmodOptions", param = "opts",
        { name = "recursive", type = "boolean", description = "everything below `path` too" },
      },
      returns = { { type = "sprites.ModeChange[]", name = "changed", description = "`{{path, mode}...}`" } },
      errors = { "usage", "not_found", "API", "WAIT" } },
    { name = "chown", group = "Files",
      summary = "Changes a path's owner and/or group (names or numeric ids).",
      params = {
        { name = "path", type = "string", description = "the path" },
        { name = "opts", type = "sprites.ChownOptions", description = "the new owner (`user`, `group` or both)" },
      },
      options = {
        class = "sprites.ChownOptions", param = "opts",
        { name = "user", type = "string|integer", description = "the owner" },
        { name = "group", type = "string|integer", description = "the group" },
        { name = "recursive", type = "boolean", description = "everything below `path` too" },
      },
      returns = { { type = "sprites.OwnerChange[]", name = "changed", description = "`{{path, uid, gid}...}`" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[s:chown("/home/sprite/app", { user = "sprite", recursive = true })]] },
    { name = "mkdir", group = "Files",
      summary = "Makes a directory and its missing parents (0755); nothing when it is a directory already.",
      params = { { name = "path", type = "string", description = "the directory" } },
      returns = {},
      errors = { "usage", "conflict", "API", "WAIT" } },
    { name = "push", group = "Files",
      summary = "Copies a local file, or a local directory tree into `remote` (made if needed), modes kept.",
      description = "A file goes to `remote` itself, or into it when `remote` ends in `/`. Each file is streamed " ..
        "from the disk as it is sent, never whole in memory, so a file of any size can be pushed. Regular files " ..
        "only: symlinks and special files in a tree are not copied (their paths are in `skipped`).",
      params = {
        { name = "local_path", type = "string", description = "the local file or directory" },
        { name = "remote", type = "string", description = "the file or directory in the sprite" },
      },
      returns = { { type = "sprites.TransferResult", name = "result", description = "`{files, dirs, bytes, skipped}`" } },
      errors = { "usage", "not_found", "error", "API", "WAIT" },
      example = [[
s:push("./site", "/home/sprite/site")
s:push("dist/app.tar.gz", "/home/sprite/")  -- /home/sprite/app.tar.gz]] },
    { name = "pull", group = "Files",
      summary = "Copies a remote directory tree into `local_dir` (made if needed), modes kept, streaming each file.",
      params = {
        { name = "remote_dir", type = "string", description = "the directory in the sprite" },
        { name = "local_dir", type = "string", description = "the local directory" },
      },
      returns = { { type = "sprites.TransferResult", name = "result", description = "`{files, dirs, bytes, skipped}`" } },
      errors = { "usage", "not_found", "error", "API", "WAIT" },
      example = [[s:pull("/home/sprite/app/dist", "./dist")]] },
    -- services
    { name = "services", group = "Services",
      summary = "Lists the sprite's services.",
      params = {},
      returns = { { type = "sprites.Service[]", name = "services", description = "definitions and states" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "service", group = "Services",
      summary = "One service by name, or nil when there is none.",
      params = { { name = "name", type = "string", description = "the service's name" } },
      returns = { { type = "sprites.Service|nil", name = "service", description = "the service, or nil" } },
      errors = { "usage", "API", "WAIT" } },
    { name = "create_service", group = "Services",
      summary = "Creates or replaces a service and (re)starts it.",
      description = "A service that cannot start is still defined: its failure is in the events and in `state`, not an error.",
      params = {
        { name = "name", type = "string", description = "the service's name" },
        { name = "opts", type = "sprites.ServiceOptions", description = "the definition" },
      },
      options = {
        class = "sprites.ServiceOptions", param = "opts",
        { name = "cmd", type = "string|string[]", description = "the executable, or an argv table (required)" },
        { name = "args", type = "string[]", description = "its arguments (not with an argv `cmd`)" },
        { name = "env", type = "table<string, string>", description = "added to the base environment" },
        { name = "dir", type = "string", description = "working directory" },
        { name = "needs", type = "string[]", description = "services started first (an unknown one is `usage`)" },
        { name = "http_port", type = "integer", description = "the port the sprite's URL reaches (one service may have it)" },
        { name = "duration", type = "number", description = "seconds of events to wait for (server default 5; 0: none)" },
        on_event,
      },
      returns = {
        { type = "sprites.Service", name = "service", description = "the service as it is now" },
        events_return,
      },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[
local svc, events = s:create_service("web", {
  cmd = { "python3", "-m", "http.server", "8080" }, dir = "/home/sprite/site", http_port = 8080,
})
assert(svc.state.status == "running", svc.state.error)]] },
    { name = "start_service", group = "Services",
      summary = "Starts a service.",
      params = {
        { name = "name", type = "string", description = "the service's name" },
        { name = "opts", type = "sprites.ServiceStartOptions", optional = true, description = "options" },
      },
      options = start_options,
      returns = { events_return },
      errors = { "usage", "not_found", "API", "WAIT" } },
    { name = "stop_service", group = "Services",
      summary = "Stops a service: TERM, then KILL after `timeout` seconds.",
      params = {
        { name = "name", type = "string", description = "the service's name" },
        { name = "opts", type = "sprites.ServiceStopOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.ServiceStopOptions", param = "opts",
        { name = "timeout", type = "number", description = "seconds from TERM to KILL (default 10)" },
        on_event,
      },
      returns = { events_return },
      errors = { "usage", "not_found", "conflict", "API", "WAIT" },
      example = [[s:stop_service("web", { timeout = 5 })]] },
    { name = "restart_service", group = "Services",
      summary = "Restarts a service.",
      params = {
        { name = "name", type = "string", description = "the service's name" },
        { name = "opts", type = "sprites.ServiceStartOptions", optional = true, description = "options" },
      },
      options = start_options,
      returns = { events_return },
      errors = { "usage", "not_found", "API", "WAIT" } },
    { name = "service_logs", group = "Services",
      summary = "A service's last buffered events, then new ones for `duration` seconds; the last is `complete`.",
      params = {
        { name = "name", type = "string", description = "the service's name" },
        { name = "opts", type = "sprites.ServiceLogsOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.ServiceLogsOptions", param = "opts",
        { name = "lines", type = "integer", description = "how many buffered events (all without)" },
        { name = "duration", type = "number", description = "seconds to follow new events (none without)" },
        on_event,
      },
      returns = { events_return },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[for _, e in ipairs(s:service_logs("web", { lines = 20 })) do io.write(e.message) end]] },
    { name = "delete_service", group = "Services",
      summary = "Stops and deletes a service.",
      params = { { name = "name", type = "string", description = "the service's name" } },
      returns = {},
      errors = { "usage", "not_found", "conflict", "API", "WAIT" } },
    { name = "signal_service", group = "Services",
      summary = "Sends a signal to a running service (a TERM or KILL counts as a crash: it is restarted).",
      params = {
        { name = "name", type = "string", description = "the service's name" },
        { name = "signal", type = "string|integer", optional = true, description = "`\"TERM\"` by default; `\"HUP\"`, `\"SIGUSR1\"`, `9`..." },
      },
      returns = {},
      errors = { "usage", "not_found", "conflict", "API", "WAIT" } },
    -- sessions
    { name = "sessions", group = "Sessions",
      summary = "Lists the sprite's exec sessions (every `s:run` and `s:spawn` is one).",
      params = {},
      returns = { { type = "sprites.Session[]", name = "sessions", description = "the sessions" } },
      errors = { "not_found", "API", "WAIT" } },
    { name = "attach", group = "Sessions",
      summary = "Attaches to a session: a process that reads the output the session kept, then what comes.",
      description = process_methods_note,
      params = { { name = "id", type = "string|integer|sprites.Session", description = "a session id (`p.session_id`) or a session table" } },
      returns = { { type = "sprites.Process", name = "process", description = "as `s:spawn`'s" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[local dev = s:attach(p.session_id)]] },
    { name = "kill_session", group = "Sessions",
      summary = "Signals a session, and KILLs it after `timeout` seconds when given.",
      params = {
        { name = "id", type = "string|integer|sprites.Session", description = "a session id or a session table" },
        { name = "opts", type = "sprites.KillSessionOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.KillSessionOptions", param = "opts",
        { name = "signal", type = "string|integer", description = "`\"TERM\"` by default" },
        { name = "timeout", type = "number", description = "seconds until KILL" },
        on_event,
      },
      returns = { { type = "sprites.StreamEvent[]", name = "events", description = "`signal`, `exited`, `killed`, `complete`...; none when the session already exited" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[s:kill_session(x.id, { signal = "INT", timeout = 10 })]] },
    { name = "tunnel", group = "Tunnels, forwards and ports",
      summary = "Opens a TCP connection to a port inside the sprite (through the API's proxy).",
      description = "Closed when the task that opened it ends, unless `keep = true`.",
      params = {
        { name = "port", type = "integer", description = "the port inside the sprite" },
        { name = "opts", type = "sprites.TunnelOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.TunnelOptions", param = "opts",
        { name = "host", type = "string", description = "the address inside the sprite (`\"localhost\"` by default; only the sprite's own)" },
        { name = "keep", type = "boolean", description = "outlive the task that opened it" },
      },
      returns = { { type = "sprites.Tunnel", name = "tunnel", description = "read, write, close" } },
      errors = { "usage", "network", "not_found", "API", "WAIT" },
      example = [[local t = s:tunnel(8080)
t:write("GET / HTTP/1.0\r\n\r\n")
print(t:read())]] },
    { name = "forward", group = "Tunnels, forwards and ports",
      summary = "Listens on a local port and relays each connection to a port inside the sprite.",
      description = "The relay runs in C++ (no Lua per byte). Closed when the task that opened it ends, unless `keep = true`.",
      params = {
        { name = "remote_port", type = "integer", description = "the port inside the sprite" },
        { name = "opts", type = "sprites.ForwardOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.ForwardOptions", param = "opts",
        { name = "local_port", type = "integer", description = "the local port (0, the default: any free one; see `fwd.local_port`)" },
        { name = "host", type = "string", description = "the local address to listen on (`\"127.0.0.1\"`)" },
        { name = "remote_host", type = "string", description = "the address inside the sprite (`\"localhost\"`)" },
        { name = "keep", type = "boolean", description = "outlive the task that opened it" },
      },
      returns = { { type = "sprites.Forward", name = "forward", description = "a listener; `close()` stops it" } },
      errors = { "usage", "conflict", "API" },
      example = [[local fwd = s:forward(3000)
print("open http://127.0.0.1:" .. fwd.local_port)]] },
    { name = "ports", group = "Tunnels, forwards and ports",
      summary = "Watches the sprite's listening TCP ports: the current ones first (as opened), then changes.",
      description = "Closed when the task that opened it ends, unless `keep = true`.",
      params = {},
      returns = { { type = "sprites.Ports", name = "watch", description = "an iterator of port events (`for ev in w do`)" } },
      errors = { "not_found", "API", "WAIT" },
      example = [[for ev in s:ports() do print(ev.type, ev.port) end]] },
    -- policies
    { name = "policy", group = "Policies",
      summary = "Without options, the network policy; with them, replaces it and returns the policy sent.",
      description = "The rules sent are, in order: `{include = \"defaults\"}` when `defaults`, an allow rule " ..
        "for each name of `allow`, a deny rule for each of `deny`, then `rules` as given, and last the " ..
        "preset's catch-all (`preset = \"defaults\"`: defaults first and `*` denied last; `\"locked\"`: " ..
        "only the allows, `*` denied last; `\"open\"`: `*` allowed last, so only the denies bite). (The server " ..
        "validates them: an invalid one is `usage` with its words, and the policy stays as it was). " ..
        "`s:policy{}` or `s:policy(false)`: no rules, unrestricted. The engine stores names lowercased, " ..
        "so `s:policy()` may differ from what was sent in case.",
      params = {
        { name = "opts", type = "sprites.PolicyOptions|false", optional = true,
          description = "the new policy; `false`: no rules" },
      },
      options = {
        class = "sprites.PolicyOptions", param = "opts",
        { name = "allow", type = "string|string[]", description = "names to allow: `\"example.com\"`, `\"*.example.com\"` (below it, any depth), `\"*\"`" },
        { name = "deny", type = "string|string[]", description = "names to deny (as `allow`)" },
        { name = "defaults", type = "boolean", description = "include the server's preset allow list (GitHub, npm, PyPI, Docker Hub, AI APIs)" },
        { name = "rules", type = "sprites.PolicyRule[]", description = "raw rules, appended" },
        { name = "preset", type = "string", description = "`\"defaults\"`, `\"locked\"` or `\"open\"`: a named mode, above" },
      },
      returns = { { type = "sprites.NetworkPolicy", name = "policy", description = "`{rules = {...}}`: the policy (as sent, when setting)" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[
s:policy { preset = "defaults", allow = { "*.internal.example.com" } }  -- an agent's allow-list
s:policy { preset = "open", deny = { "*.tracker.example" } }           -- a human's open network
for _, r in ipairs(s:policy().rules) do print(r.include or r.domain, r.action) end]] },
    { name = "policy_allows", group = "Policies",
      summary = "Whether the network policy lets the sprite reach `domain`, decided here as the engine decides.",
      description = "The policy is fetched, then: names compare case-insensitively, a trailing dot ignored; " ..
        "the most specific matching rule wins (the exact name, then the wildcard with the longest suffix, " ..
        "then `*`); the same pattern both ways: deny. No rule matches: denied, unless the policy has no rules " ..
        "(unrestricted). The list behind `include = \"defaults\"` is the server's, so when it could decide " ..
        "(no explicit rule matches, or the best match is a wildcard or `*` deny a default could outrank) " ..
        "the answer is `nil, \"decided by include defaults\"`.",
      params = { { name = "domain", type = "string", description = "a host name" } },
      returns = {
        { type = "boolean|nil", name = "allowed", description = "true, false, or nil when `include defaults` decides" },
        { type = "string", name = "why", description = "with nil: `\"decided by include defaults\"`" },
      },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[assert(s:policy_allows("api.github.com") ~= false, "the agent needs GitHub")]] },
    { name = "privileges", group = "Policies",
      summary = "Without options, the privileges policy; with them, replaces it; `false` resets it.",
      description = "Stored and reported; the local engine does not enforce it. A field not given takes its " ..
        "default (`\"\"`, `{}`, `false`). `s:privileges(false)` goes back to the default and returns nothing.",
      params = {
        { name = "opts", type = "sprites.PrivilegesOptions|false", optional = true, description = "the new policy; `false`: the default" },
      },
      options = {
        class = "sprites.PrivilegesOptions", param = "opts",
        { name = "profile", type = "\"minimal\"|\"standard\"|\"privileged\"|\"\"", description = "the profile (`\"\"`: none)" },
        { name = "devices", type = "string[]", description = "device paths the sprite may use" },
        { name = "no_new_privileges", type = "boolean", description = "`noNewPrivileges` on the wire" },
      },
      returns = { { type = "sprites.Privileges|nil", name = "privileges", description = "the policy (as stored, when setting)" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[s:privileges { profile = "minimal", no_new_privileges = true }]] },
    { name = "resources", group = "Policies",
      summary = "Without options, the resources policy; with them, replaces it; `false` resets it.",
      description = "Stored and reported; the local engine does not enforce it. `s:resources(false)` goes back " ..
        "to the default and returns nothing.",
      params = {
        { name = "opts", type = "sprites.ResourcesOptions|false", optional = true, description = "the new policy; `false`: the default" },
      },
      options = {
        class = "sprites.ResourcesOptions", param = "opts",
        { name = "memory", type = "sprites.MemoryLimits", description = "`{limit_mb = N, autoscale = bool}`" },
      },
      returns = { { type = "sprites.Resources|nil", name = "resources", description = "the policy (as stored, when setting)" } },
      errors = { "usage", "not_found", "API", "WAIT" },
      example = [[s:resources { memory = { limit_mb = 2048, autoscale = true } }]] },
  },
}

---------------------------------------------------------------------------
-- Process, Checkpoint, Reader
---------------------------------------------------------------------------
section {
  name = "sprites.Process", kind = "class", var = "p",
  summary = "A running command: from `s:spawn` or `s:attach`.",
  description = process_methods_note,
  fields = {
    { name = "sprite", type = "sprites.Sprite", description = "the sprite it runs on" },
    { name = "command", type = "string[]", description = "the argv" },
    { name = "session_id", type = "string", description = "the session, for `s:attach` and `s:kill_session`" },
    { name = "code", type = "integer", optional = true, description = "the exit code, once it exited" },
  },
  functions = {
    { name = "read", summary = "The next piece of output of a stream; nil once the process ended and everything was read.",
      params = { { name = "stream", type = "\"stdout\"|\"stderr\"", optional = true, description = "`\"stdout\"` by default" } },
      returns = { { type = "string|nil", name = "piece", description = "the next piece, or nil at the end" } },
      errors = { "usage", "API", "WAIT" } },
    { name = "lines", summary = "An iterator over complete lines of a stream (the last may lack its newline).",
      params = { { name = "stream", type = "\"stdout\"|\"stderr\"", optional = true, description = "`\"stdout\"` by default" } },
      returns = { { type = "fun(): string?", name = "iterator", description = "gives lines, without the newline" } },
      errors = { "usage", "API", "WAIT" },
      example = [[for line in p:lines() do print(line) end]] },
    { name = "write", summary = "Writes to the process's stdin.",
      params = { { name = "data", type = "string", description = "the input" } },
      returns = {}, errors = { "API", "WAIT" } },
    { name = "close_stdin", summary = "Closes the process's stdin (end of input).",
      params = {}, returns = {}, errors = { "API", "WAIT" } },
    { name = "kill", summary = "Sends a signal to the process.",
      params = { { name = "signal", type = "string|integer", optional = true, description = "`\"TERM\"` by default; names with or without `SIG`, or numbers" } },
      returns = {}, errors = { "API", "WAIT" } },
    { name = "resize", summary = "Sets a TTY's size.",
      params = {
        { name = "cols", type = "integer", description = "columns" },
        { name = "rows", type = "integer", description = "rows" },
      },
      returns = {}, errors = { "API", "WAIT" } },
    { name = "wait", summary = "Waits for the exit; returns the code and the output not read yet.",
      params = {},
      returns = {
        { type = "integer", name = "code", description = "the exit code (128+N for a signal)" },
        { type = "string", name = "stdout", description = "stdout not read yet" },
        { type = "string", name = "stderr", description = "stderr not read yet" },
      },
      errors = { "API", "WAIT" },
      example = [[local code, out = s:spawn({ "make", "-j8" }):wait()]] },
    { name = "detach", summary = "Leaves the command running after this task's scope ends; attach again with `s:attach(p.session_id)`.",
      params = {}, returns = {}, errors = { "API", "WAIT" } },
  },
}

section {
  name = "sprites.Checkpoint", kind = "class", var = "cp",
  summary = "A checkpoint of a sprite: from `s:checkpoint`, `s:checkpoints`, `s:get_checkpoint`.",
  fields = {
    { name = "id", type = "string", description = "the checkpoint's id" },
    { name = "comment", type = "string", description = "its comment" },
    { name = "create_time", type = "string", description = "when it was taken (RFC 3339)" },
    { name = "is_auto", type = "boolean", description = "an automatic checkpoint" },
    { name = "current", type = "boolean", description = "the one the sprite was last restored from" },
    { name = "source_id", type = "string", description = "the checkpoint it was taken from" },
    { name = "history", type = "string[]", description = "its ancestry" },
    { name = "sprite", type = "sprites.Sprite", description = "its sprite" },
  },
  functions = {
    { name = "restore", summary = "`cp.sprite:restore(cp, opts)`.",
      params = { { name = "opts", type = "sprites.RestoreOptions", optional = true, description = "as `s:restore`'s" } },
      returns = {}, errors = { "not_found", "timeout", "protocol", "API", "WAIT" } },
    { name = "delete", summary = "`cp.sprite:delete_checkpoint(cp)`.",
      params = {}, returns = {}, errors = { "not_found", "API", "WAIT" } },
  },
}

section {
  name = "sprites.Reader", kind = "class", var = "reader",
  summary = "A file open for reading: from `s:open`.",
  fields = {
    { name = "path", type = "string", description = "the file" },
    { name = "sprite", type = "sprites.Sprite", description = "its sprite" },
  },
  functions = {
    { name = "read", summary = "The next piece of the file (up to 4 MiB); nil at the end (which closes the reader).",
      params = {},
      returns = { { type = "string|nil", name = "piece", description = "the next piece, or nil" } },
      errors = { "API", "WAIT" } },
    { name = "pieces", summary = "An iterator over the remaining pieces.",
      params = {},
      returns = { { type = "fun(): string?", name = "iterator", description = "gives pieces until the end" } },
      errors = { "API", "WAIT" },
      example = [[for piece in reader:pieces() do out:write(piece) end]] },
    { name = "bytes_read", summary = "The bytes read so far, and the file's size when the server sent it (while open).",
      params = {},
      returns = {
        { type = "number|nil", name = "bytes", description = "bytes read so far" },
        { type = "number|nil", name = "size", description = "the size, while open and when known" },
      },
      errors = {} },
    { name = "close", summary = "Closes the reader early (the end closes it too).",
      params = {}, returns = {}, errors = {} },
  },
}

section {
  name = "sprites.Tunnel", kind = "class", var = "tunnel",
  summary = "A TCP connection to a port inside a sprite: from `s:tunnel`.",
  functions = {
    { name = "read", summary = "The next bytes from the target; nil once it closed.",
      params = {}, returns = { { type = "string|nil", name = "data", description = "bytes, or nil at the end" } },
      errors = { "network", "WAIT" } },
    { name = "write", summary = "Sends bytes to the target.",
      params = { { name = "data", type = "string", description = "the bytes" } }, returns = {},
      errors = { "network", "WAIT" } },
    { name = "close", summary = "Closes the connection.", params = {}, returns = {}, errors = {} },
    { name = "info", summary = "What it is connected to and how much went through.",
      params = {}, returns = { { type = "table", name = "info", description = "`target`, `bytes_read`, `bytes_written`, `closed`" } },
      errors = {} },
  },
}

section {
  name = "sprites.Forward", kind = "class", var = "fwd",
  summary = "A local listener relaying to a port inside a sprite: from `s:forward`.",
  fields = {
    { name = "local_port", type = "integer", description = "the port it listens on" },
    { name = "remote_port", type = "integer", description = "the port inside the sprite" },
    { name = "host", type = "string", description = "the local address" },
    { name = "remote_host", type = "string", description = "the address inside the sprite" },
  },
  functions = {
    { name = "close", summary = "Stops listening and closes its connections.", params = {}, returns = {}, errors = {} },
    { name = "connections", summary = "How many connections are open now.",
      params = {}, returns = { { type = "integer", name = "count", description = "open connections" } }, errors = {} },
    { name = "stats", summary = "Counters since it opened.",
      params = {}, returns = { { type = "table", name = "stats", description = "`open`, `accepted`, `failed`, `bytes_in`, `bytes_out`, `closed`, `last_error`" } },
      errors = {} },
  },
}

section {
  name = "sprites.Ports", kind = "class", var = "watch",
  summary = "A watch of a sprite's listening ports: from `s:ports`; call it (or `next`) for the next event.",
  functions = {
    { name = "next", summary = "The next port event: `{type = \"opened\"|\"closed\", port, address, pid}`; nil once closed.",
      params = {}, returns = { { type = "table|nil", name = "event", description = "the event" } },
      errors = { "API", "WAIT" } },
    { name = "close", summary = "Ends the watch.", params = {}, returns = {}, errors = {} },
  },
}

---------------------------------------------------------------------------
-- sprites.workflow
---------------------------------------------------------------------------
section {
  name = "sprites.workflow", kind = "module",
  summary = "The patterns people write around agents, made safe to run unattended.",
  description = "Loaded on first use of `sprites.workflow` (or `require \"sprites.workflow\"`). As with the " ..
    "Sprite methods, an unknown option name is a `usage` error listing the known ones.",
  functions = {
    { name = "checkpointed",
      summary = "Checkpoints the sprite and runs `fn(s, cp)`; restores the checkpoint when `fn` raises, returns `false` or is cancelled.",
      description = "The restore is shielded (it completes even during cancellation); the error is re-raised with " ..
        "`err.restored_to` (and `err.failed_checkpoint` with `keep_failed`). When `fn` returns `false`, the " ..
        "call returns `false` and the failed-state checkpoint (or nil).",
      params = {
        { name = "s", type = "sprites.Sprite", description = "the sprite" },
        { name = "opts", type = "sprites.CheckpointedOptions", optional = true, description = "options (may be left out)" },
        { name = "fn", type = "fun(s: sprites.Sprite, cp: sprites.Checkpoint): any", description = "the work" },
      },
      options = {
        class = "sprites.CheckpointedOptions", param = "opts",
        { name = "comment", type = "string", description = "the checkpoint's comment (default `workflow.checkpointed`)" },
        on_progress,
        { name = "keep_failed", type = "boolean", description = "first checkpoint the failed state" },
      },
      overloads = { "fun(s: sprites.Sprite, fn: fun(s: sprites.Sprite, cp: sprites.Checkpoint): any): any" },
      returns = { { type = "any", name = "...", description = "`fn`'s results" } },
      errors = { "usage", "API", "WAIT", "fn's error" },
      example = [[
local ok, err = pcall(sprites.workflow.checkpointed, s, { keep_failed = true }, function(s)
  s:run({ "claude", "-p", "fix the tests" }, { check = true, timeout = 3600 })
end)]] },
    { name = "ephemeral",
      summary = "Creates a sprite `prefix-NNNN`, runs `fn(s)`, and always deletes the sprite afterwards.",
      params = {
        { name = "prefix", type = "string", description = "the name prefix" },
        { name = "fn", type = "fun(s: sprites.Sprite): any", description = "the work" },
        { name = "create_opts", type = "sprites.CreateOptions", optional = true, description = "as `sprites.create`'s" },
      },
      returns = { { type = "any", name = "...", description = "`fn`'s results" } },
      errors = { "usage", "API", "WAIT", "fn's error" },
      example = [[sprites.workflow.ephemeral("try", function(s) print(s:run("uname -a").stdout) end)]] },
    { name = "retry",
      summary = "Runs `fn(attempt, started)` again on transient failures, with jittered exponential backoff.",
      description = "Transient: `network`, `rate_limited`, `capacity`, `protocol` (`on` replaces the set); a " ..
        "`retry_after` wins over the backoff. Once `fn` called `started()` nothing is retried unless `after_start`.",
      params = {
        { name = "opts", type = "sprites.RetryOptions", optional = true, description = "options (may be left out)" },
        { name = "fn", type = "fun(attempt: integer, started: fun()): any", description = "the work" },
      },
      options = {
        class = "sprites.RetryOptions", param = "opts",
        { name = "attempts", type = "integer", description = "tries in all (default 3)" },
        { name = "base", type = "number", description = "the first wait in seconds (default 0.5)" },
        { name = "max", type = "number", description = "the longest wait in seconds (default 30)" },
        { name = "on", type = "string[]", description = "the error kinds to retry" },
        { name = "after_start", type = "boolean", description = "retry even after `started()` was called" },
      },
      overloads = { "fun(fn: fun(attempt: integer, started: fun()): any): any" },
      returns = { { type = "any", name = "...", description = "`fn`'s results" } },
      errors = { "WAIT", "fn's error" },
      example = [[local s = sprites.workflow.retry(function() return sprites.create("dev", { exist_ok = true }) end)]] },
    { name = "parallel",
      summary = "`fn(item, i)` for every item, at most `limit` at once, in tasks of the caller; results in order.",
      description = "The first error cancels the rest and is raised; a `rate_limited` error waits its " ..
        "`retry_after` and tries that item again. Also `sprites.parallel`.",
      params = {
        { name = "items", type = "any[]", description = "the items" },
        { name = "fn", type = "fun(item: any, i: integer): any", description = "called for each item in its own task" },
        { name = "opts", type = "sprites.ParallelOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.ParallelOptions", param = "opts",
        { name = "limit", type = "integer", description = "how many at once (default 8)" },
      },
      returns = { { type = "any[]", name = "results", description = "`fn`'s first result for each item" } },
      errors = { "WAIT", "fn's error" },
      example = [[local results = sprites.workflow.parallel(names, function(name) return sprites.get(name):status() end, { limit = 4 })]] },
    { name = "bake",
      summary = "Idempotent set-up: returns the checkpoint commented `bake <version>` if any, else runs the steps and takes it.",
      params = {
        { name = "s", type = "sprites.Sprite", description = "the sprite" },
        { name = "steps", type = "(string|table|fun(s: sprites.Sprite))[]", description = "commands (run with `check = true`) or functions of the sprite" },
        { name = "opts", type = "sprites.BakeOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.BakeOptions", param = "opts",
        { name = "version", type = "string|number", description = "names the checkpoint (default `1`)" },
      },
      returns = {
        { type = "sprites.Checkpoint", name = "checkpoint", description = "the bake checkpoint" },
        { type = "boolean", name = "made", description = "whether it was made now" },
      },
      errors = { "usage", "exit", "API", "WAIT" },
      example = [[local cp = sprites.workflow.bake(s, { "apt-get install -y jq", "npm ci" }, { version = 2 })]] },
    { name = "reset",
      summary = "Restores the bake checkpoint.",
      params = {
        { name = "s", type = "sprites.Sprite", description = "the sprite" },
        { name = "opts", type = "sprites.BakeOptions", optional = true, description = "as `bake`'s" },
      },
      returns = {},
      errors = { "not_found", "API", "WAIT" } },
    { name = "hold",
      summary = "Keeps the sprite awake (an attached session) while `fn(s)` runs.",
      params = {
        { name = "s", type = "sprites.Sprite", description = "the sprite" },
        { name = "fn", type = "fun(s: sprites.Sprite): any", description = "the work" },
      },
      returns = { { type = "any", name = "...", description = "`fn`'s results" } },
      errors = { "API", "WAIT", "fn's error" } },
    { name = "secret_file",
      summary = "Writes a secret to a 0600 file through stdin: never in a command line.",
      params = {
        { name = "s", type = "sprites.Sprite", description = "the sprite" },
        { name = "path", type = "string", description = "the file (parents are made)" },
        { name = "value", type = "string", description = "the secret" },
      },
      returns = {},
      errors = { "exit", "API", "WAIT" },
      example = [[sprites.workflow.secret_file(s, "/home/sprite/.config/token", os.getenv("TOKEN"))]] },
    { name = "redact",
      summary = "Replaces each secret value in `text` by `***` (for logs).",
      params = {
        { name = "text", type = "string", description = "the text" },
        { name = "secrets", type = "table<any, string>", description = "the secret values" },
      },
      returns = { { type = "string", name = "text", description = "the redacted text" } },
      errors = {},
      example = [[print(sprites.workflow.redact(r.stdout, { token }))]] },
    { name = "tail",
      summary = "Follows a file as it grows (`tail -F`), reconnecting when the connection breaks; ends when the task is cancelled.",
      params = {
        { name = "s", type = "sprites.Sprite", description = "the sprite" },
        { name = "path", type = "string", description = "the file" },
        { name = "opts", type = "sprites.TailOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.TailOptions", param = "opts",
        { name = "from_start", type = "boolean", description = "`false`: only lines appended from now (default: the whole file first)" },
      },
      returns = { { type = "fun(): string", name = "iterator", description = "gives lines as they are appended" } },
      errors = { "WAIT" },
      example = [[
sprites.timeout(600, function()
  for line in sprites.workflow.tail(s, "/home/sprite/agent.log") do print(line) end
end)]] },
    { name = "jsonl",
      summary = "Decodes JSON lines from a line iterator, skipping lines that are not JSON.",
      params = { { name = "lines", type = "fun(): string?", description = "a line iterator (`p:lines()`, `workflow.tail`...)" } },
      returns = { { type = "fun(): any", name = "iterator", description = "gives decoded values" } },
      errors = {},
      example = [[for event in sprites.workflow.jsonl(p:lines()) do print(event.type) end]] },
    { name = "receipt",
      summary = "A record of a run, saved as JSON.",
      params = { { name = "path", type = "string", description = "the local file `r:write()` writes" } },
      returns = { { type = "sprites.Receipt", name = "receipt", description = "an empty receipt" } },
      errors = {},
      example = [[
local r = sprites.workflow.receipt("receipt.json")
r:add { sprite = s.name, code = result.code }
r:write()]] },
  },
}

section {
  name = "sprites.Receipt", kind = "class", var = "r",
  summary = "A run's record: from `sprites.workflow.receipt`.",
  fields = {
    { name = "path", type = "string", description = "where `write` saves it" },
    { name = "started", type = "string", description = "when it was made (UTC, ISO 8601)" },
    { name = "entries", type = "table[]", description = "what `add` recorded" },
  },
  functions = {
    { name = "add", summary = "Records an entry.",
      params = { { name = "entry", type = "table", description = "any JSON-encodable table (sprite, name, code, ok, duration...)" } },
      returns = { { type = "table", name = "entry", description = "the entry" } },
      errors = {} },
    { name = "write", summary = "Saves `{started, finished, entries}` as JSON (a temporary file, renamed).",
      params = {},
      returns = { { type = "string", name = "path", description = "the file written" } },
      errors = { "error" } },
  },
}

---------------------------------------------------------------------------
-- sprites.json
---------------------------------------------------------------------------
section {
  name = "sprites.json", kind = "module",
  summary = "JSON: strict encoding (sparse arrays, mixed tables, NaN are errors naming the path) and decoding.",
  description = "A table with keys `1..n` is an array, one with string keys an object; an empty table is `{}` " ..
    "unless it carries the array mark. Decoded arrays and objects carry their mark, so " ..
    "`json.encode(json.decode(s))` keeps `[]` and `{}` apart. Nesting is limited to 1000 levels.",
  fields = {
    { name = "null", type = "lightuserdata", description = "the `null` sentinel: `v == json.null`" },
  },
  functions = {
    { name = "encode", summary = "Encodes a value as JSON text.",
      params = {
        { name = "value", type = "any", description = "a table, string, number, boolean or `json.null`" },
        { name = "opts", type = "sprites.JsonEncodeOptions", optional = true, description = "options" },
      },
      options = {
        class = "sprites.JsonEncodeOptions", param = "opts",
        { name = "indent", type = "integer|boolean", description = "spaces per level (`true`: 2); also sorts keys" },
        { name = "sort_keys", type = "boolean", description = "deterministic output" },
        { name = "empty_table", type = "\"object\"|\"array\"", description = "how an unmarked empty table encodes (default `\"object\"`)" },
      },
      returns = { { type = "string", name = "text", description = "the JSON text" } },
      errors = { "error" },
      example = [[print(sprites.json.encode(doc, { indent = 2, sort_keys = true }))]] },
    { name = "decode", summary = "Decodes JSON text; `null` becomes `json.null`.",
      params = { { name = "text", type = "string", description = "the JSON text" } },
      returns = { { type = "any", name = "value", description = "the value" } },
      errors = { "error" },
      example = [[local doc = sprites.json.decode('{"labels": []}')]] },
    { name = "array", summary = "Marks a table as an array, so it encodes as `[]` while empty.",
      params = { { name = "t", type = "table", optional = true, description = "the table (a new one without)" } },
      returns = { { type = "table", name = "t", description = "the table" } },
      errors = {},
      example = [[doc.labels = sprites.json.array()]] },
    { name = "object", summary = "Marks a table as an object, so it encodes as `{}` while empty.",
      params = { { name = "t", type = "table", optional = true, description = "the table (a new one without)" } },
      returns = { { type = "table", name = "t", description = "the table" } },
      errors = {} },
    { name = "is_array", summary = "Whether a table carries the array mark (decoded arrays do).",
      params = { { name = "t", type = "table", description = "the table" } },
      returns = { { type = "boolean", name = "marked", description = "whether it is marked as an array" } },
      errors = {} },
  },
}

---------------------------------------------------------------------------
-- sprites.error
---------------------------------------------------------------------------
section {
  name = "sprites.error", kind = "module",
  summary = "Structured errors and the exit code of each kind ([errors.md](errors.md)).",
  fields = {
    { name = "exit_codes", type = "table<string, integer>", description = "the exit code of each kind (others exit 1)" },
    { name = "Error", type = "table", description = "the metatable of error objects" },
  },
  functions = {
    { name = "new", summary = "Builds an error object (not raised).",
      params = {
        { name = "kind", type = "string", description = "the kind (`not_found`, `usage`...)" },
        { name = "message", type = "string", description = "one line" },
        { name = "fields", type = "table", optional = true, description = "more fields; becomes the error object" },
      },
      returns = { { type = "sprites.Error", name = "err", description = "the error" } },
      errors = {},
      example = [[local err = sprites.error.new("not_found", "no sprite named " .. name, { sprite = name })]] },
    { name = "raise", summary = "Raises a new error, with the traceback of the caller.",
      params = {
        { name = "kind", type = "string", description = "the kind" },
        { name = "message", type = "string", description = "one line" },
        { name = "fields", type = "table", optional = true, description = "more fields" },
        { name = "level", type = "integer", optional = true, description = "where the traceback starts (1: the caller, default)" },
      },
      returns = {},
      errors = { "the given kind" },
      example = [[sprites.error.raise("usage", "deploy: expected a branch name")]] },
    { name = "is", summary = "Whether a value is a structured error (of the given kind).",
      params = {
        { name = "err", type = "any", description = "the value (what `pcall` returned)" },
        { name = "kind", type = "string", optional = true, description = "the kind to test for" },
      },
      returns = { { type = "boolean", name = "is", description = "whether it is" } },
      errors = {},
      example = [[
local ok, err = pcall(sprites.get, name)
if sprites.error.is(err, "not_found") then s = sprites.create(name) end]] },
    { name = "is_error", summary = "Whether a value is a structured error.",
      params = { { name = "value", type = "any", description = "the value" } },
      returns = { { type = "boolean", name = "is", description = "whether it is" } },
      errors = {} },
    { name = "wrap", summary = "Turns any raised value into a structured error (an existing one is kept as it is).",
      params = {
        { name = "value", type = "any", description = "what was raised" },
        { name = "traceback", type = "string", optional = true, description = "the traceback to record when it has none" },
      },
      returns = { { type = "sprites.Error", name = "err", description = "the error" } },
      errors = {} },
    { name = "handler", summary = "An `xpcall` message handler: wraps the error and records where it was raised.",
      params = { { name = "value", type = "any", description = "what was raised" } },
      returns = { { type = "sprites.Error", name = "err", description = "the error, with its traceback" } },
      errors = {},
      example = [[local ok, err = xpcall(work, sprites.error.handler)]] },
    { name = "same", summary = "Whether `err` is the shared cancellation `reason`, or a task's copy of it.",
      params = {
        { name = "err", type = "any", description = "an error" },
        { name = "reason", type = "sprites.Error", description = "a cancellation reason" },
      },
      returns = { { type = "boolean", name = "same", description = "whether it is" } },
      errors = {} },
    { name = "location", summary = "The `file:line` of the innermost frame of the error's traceback in user code.",
      params = { { name = "err", type = "any", description = "an error" } },
      returns = { { type = "string|nil", name = "where", description = "`file:line`, or nil" } },
      errors = {} },
    { name = "exit_code", summary = "The process exit code for an error (0 for nil, 1 for unknown kinds).",
      params = { { name = "err", type = "any", description = "an error, or nil" } },
      returns = { { type = "integer", name = "code", description = "the exit code" } },
      errors = {} },
  },
}

section {
  name = "sprites.Error", kind = "class", var = "err",
  summary = "A structured error: everything the runtime raises. `tostring(err)` is one line: `kind: message`.",
  fields = {
    { name = "kind", type = "string", description = "a small, stable word (see `sprites.error.exit_codes`)" },
    { name = "message", type = "string", description = "one line saying what went wrong" },
    { name = "traceback", type = "string", optional = true, description = "where it was raised (for a timeout: where the task waited)" },
    { name = "task_site", type = "string", optional = true, description = "`file:line` where the failing task was spawned" },
    { name = "spawn_chain", type = "string[]", optional = true, description = "spawn sites from the failing task up to the main task" },
    { name = "status", type = "integer", optional = true, description = "the HTTP status of an API error" },
    { name = "op", type = "string", optional = true, description = "what the failing call was doing" },
    { name = "code", type = "any", optional = true, description = "the errno name of a filesystem error; the exit code of an `exit` error" },
    { name = "result", type = "sprites.RunResult", optional = true, description = "the command's result, for an `exit` error" },
    { name = "retry_after", type = "number", optional = true, description = "seconds to wait, for `rate_limited`" },
    { name = "restored_to", type = "string", optional = true, description = "set by `workflow.checkpointed`: the checkpoint restored" },
    { name = "failed_checkpoint", type = "string", optional = true, description = "set by `workflow.checkpointed` with `keep_failed`" },
  },
  functions = {},
}

---------------------------------------------------------------------------
-- Plain tables the API returns
---------------------------------------------------------------------------
section {
  name = "sprites.SpriteInfo", kind = "type",
  summary = "A sprite's fields as the API gives them (`s.info`).",
  fields = {
    { name = "name", type = "string", description = "the name" },
    { name = "id", type = "string", description = "the id" },
    { name = "organization", type = "string", description = "the organization" },
    { name = "status", type = "string", description = "`running`, `warm`, `cold`..." },
    { name = "url", type = "string", description = "the sprite's URL" },
    { name = "url_auth", type = "string", description = "`sprite` or `public`" },
    { name = "labels", type = "string[]", description = "its labels" },
    { name = "created_at", type = "string", description = "RFC 3339" },
    { name = "updated_at", type = "string", description = "RFC 3339" },
    { name = "last_running_at", type = "string?", description = "RFC 3339: when it last ran (absent when it never did)" },
  },
}

section {
  name = "sprites.RunResult", kind = "type",
  summary = "What `s:run` returns.",
  fields = {
    { name = "code", type = "integer", description = "the exit code (128+N for a signal)" },
    { name = "ok", type = "boolean", description = "`code == 0` and not timed out" },
    { name = "stdout", type = "string", description = "the output" },
    { name = "stderr", type = "string", description = "the error output" },
    { name = "timed_out", type = "boolean", description = "whether the `timeout` option ended it" },
    { name = "duration", type = "number", description = "seconds" },
    { name = "session_id", type = "string", description = "the session it ran in" },
    { name = "command", type = "string[]", description = "the argv" },
  },
}

section {
  name = "sprites.StreamEvent", kind = "type",
  summary = "One event of a progress stream: checkpoints, restores, services, killed sessions.",
  fields = {
    { name = "type", type = "string", description = "`info`, `error`, `complete`; for services `started`, `stdout`, `stderr`, `exit`, `stopping`, `stopped`..." },
    { name = "message", type = "string", description = "the text or output" },
    { name = "exit_code", type = "integer", optional = true, description = "for `exit` events" },
    { name = "timestamp", type = "number", optional = true, description = "Unix milliseconds" },
  },
}

section {
  name = "sprites.Entry", kind = "type",
  summary = "A filesystem entry (`s:list`, `s:stat`). `(\"%o\"):format(e.mode)` gives `\"644\"`.",
  fields = {
    { name = "name", type = "string", description = "the base name" },
    { name = "path", type = "string", description = "the absolute path" },
    { name = "type", type = "\"file\"|\"directory\"|\"symlink\"", description = "what it is" },
    { name = "size", type = "number", description = "bytes" },
    { name = "mode", type = "integer", description = "the mode as a number" },
    { name = "mod_time", type = "string", description = "RFC 3339" },
    { name = "is_dir", type = "boolean", description = "whether it is a directory" },
  },
}

section {
  name = "sprites.WriteResult", kind = "type",
  summary = "What `s:write_file` returns.",
  fields = {
    { name = "path", type = "string", description = "the file" },
    { name = "size", type = "number", description = "bytes written" },
    { name = "mode", type = "integer", description = "its mode" },
  },
}

section {
  name = "sprites.Move", kind = "type",
  summary = "A source and destination (`s:rename`, `s:copy`).",
  fields = {
    { name = "source", type = "string", description = "the source path" },
    { name = "dest", type = "string", description = "the destination path" },
  },
}

section {
  name = "sprites.CopyResult", kind = "type",
  summary = "What `s:copy` returns.",
  fields = {
    { name = "copied", type = "sprites.Move[]", description = "each file copied" },
    { name = "total_bytes", type = "number", description = "bytes copied" },
  },
}

section {
  name = "sprites.ModeChange", kind = "type",
  summary = "One path `s:chmod` changed.",
  fields = {
    { name = "path", type = "string", description = "the path" },
    { name = "mode", type = "integer", description = "its new mode" },
  },
}

section {
  name = "sprites.OwnerChange", kind = "type",
  summary = "One path `s:chown` changed.",
  fields = {
    { name = "path", type = "string", description = "the path" },
    { name = "uid", type = "integer", description = "the new owner" },
    { name = "gid", type = "integer", description = "the new group" },
  },
}

section {
  name = "sprites.TransferResult", kind = "type",
  summary = "What `s:push` and `s:pull` return.",
  fields = {
    { name = "files", type = "integer", description = "files copied" },
    { name = "dirs", type = "integer", description = "directories" },
    { name = "bytes", type = "number", description = "bytes copied" },
    { name = "skipped", type = "string[]", description = "symlinks and special files, not copied" },
  },
}

section {
  name = "sprites.Service", kind = "type",
  summary = "A service's definition and state (`s:services`, `s:service`, `s:create_service`).",
  fields = {
    { name = "name", type = "string", description = "the name" },
    { name = "cmd", type = "string", description = "the executable" },
    { name = "args", type = "string[]", description = "its arguments" },
    { name = "env", type = "table<string, string>", description = "added to the base environment" },
    { name = "dir", type = "string", description = "working directory" },
    { name = "needs", type = "string[]", description = "services started first" },
    { name = "http_port", type = "integer", optional = true, description = "the port the sprite's URL reaches" },
    { name = "state", type = "sprites.ServiceState", optional = true, description = "where it is" },
  },
}

section {
  name = "sprites.ServiceState", kind = "type",
  summary = "A service's state.",
  fields = {
    { name = "status", type = "\"stopped\"|\"starting\"|\"running\"|\"stopping\"|\"failed\"", description = "the status" },
    { name = "pid", type = "integer", optional = true, description = "the process id while it runs" },
    { name = "started_at", type = "string", description = "RFC 3339" },
    { name = "error", type = "string", description = "why it failed" },
    { name = "restart_count", type = "integer", description = "restarts after crashes" },
    { name = "next_restart_at", type = "string", description = "when it restarts next (after a crash)" },
  },
}

section {
  name = "sprites.Session", kind = "type",
  summary = "An exec session (`s:sessions`).",
  fields = {
    { name = "id", type = "string", description = "the session id" },
    { name = "command", type = "string", description = "its command" },
    { name = "workdir", type = "string", description = "its working directory" },
    { name = "created", type = "string", description = "when it started" },
    { name = "is_active", type = "boolean", description = "a client is attached" },
    { name = "tty", type = "boolean", description = "it has a terminal" },
    { name = "bytes_per_second", type = "number", description = "its output rate" },
  },
}

section {
  name = "sprites.NetworkPolicy", kind = "type",
  summary = "A sprite's network policy (`s:policy`): no rules means unrestricted.",
  fields = {
    { name = "rules", type = "sprites.PolicyRule[]", description = "in order" },
  },
}

section {
  name = "sprites.PolicyRule", kind = "type",
  summary = "One rule of a network policy: `{domain=, action=}` or `{include=}`.",
  fields = {
    { name = "domain", type = "string", optional = true, description = "`\"example.com\"`, `\"*.example.com\"` or `\"*\"`" },
    { name = "action", type = "\"allow\"|\"deny\"", optional = true, description = "with `domain`" },
    { name = "include", type = "\"defaults\"", optional = true, description = "the server's preset allow list, instead of `domain`" },
  },
}

section {
  name = "sprites.Privileges", kind = "type",
  summary = "A sprite's privileges policy (`s:privileges`).",
  fields = {
    { name = "profile", type = "string", description = "`\"minimal\"`, `\"standard\"`, `\"privileged\"` or `\"\"`" },
    { name = "devices", type = "string[]", description = "device paths" },
    { name = "no_new_privileges", type = "boolean", description = "`noNewPrivileges` on the wire" },
  },
}

section {
  name = "sprites.Resources", kind = "type",
  summary = "A sprite's resources policy (`s:resources`).",
  fields = {
    { name = "memory", type = "sprites.MemoryLimits", optional = true, description = "the memory limit" },
  },
}

section {
  name = "sprites.MemoryLimits", kind = "type",
  summary = "Memory in a resources policy.",
  fields = {
    { name = "limit_mb", type = "integer", optional = true, description = "MiB" },
    { name = "autoscale", type = "boolean", optional = true, description = "whether the limit may grow" },
  },
}

return {
  title = "The Lua API reference",
  error_groups = error_groups,
  sections = sections,
}
