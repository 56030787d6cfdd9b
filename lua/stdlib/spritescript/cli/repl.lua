-- spritescript.cli.repl: `spritescript repl [NAME]`, a Lua prompt where `s`
-- is the bound sprite (docs/cli.md, "The REPL").
--
-- Each line runs as a task of its own, detached from the REPL: waiting
-- calls just work, and what a line spawns keeps running after its prompt
-- returns. Ctrl-C cancels the line that is running (its task and what it
-- spawned), or clears the prompt; the REPL goes on. Lines come from
-- spritescript.lineedit: libedit on a terminal (history, completion), plain
-- lines otherwise, always through the event loop.
local core = require "spritescript.core"
local lineedit = require "spritescript.lineedit"
local task = require "sprites.task"
local errors = require "sprites.error"
local util = require "spritescript.cli.util"
local pretty = require "spritescript.pretty"
local api = require "sprites"

local M = {}

local USAGE = "repl [NAME] [-s NAME]"
local HISTORY_SIZE = 1000

local function pack(...) return { n = select("#", ...), ... } end

---------------------------------------------------------------------------
-- Compiling what was typed
---------------------------------------------------------------------------

-- M.compile(source) -> fn, is_expression | nil, "incomplete" | nil, message.
-- An expression first (so `1+1` prints 2), then a statement; a syntax error
-- at the end of the input means the chunk goes on on the next line.
-- Expressions are evaluated as arguments, not returned by a tail call, so
-- that error("x") still says where it was (stdin:1: x).
local function expression(source)
  return loadstring("return (function(...) return ... end)(" .. source .. "\n)", "=stdin")
end

function M.compile(source)
  local explicit = source:match("^%s*=(.*)$")
  if explicit then
    local fn = expression(explicit)
    if fn then return fn, true end
    local _, err = loadstring("return " .. explicit, "=stdin")
    if err:match("<eof>'?$") then return nil, "incomplete" end
    return nil, err
  end
  local fn = expression(source)
  if fn then return fn, true end
  local err
  fn, err = loadstring(source, "=stdin")
  if fn then return fn, false end
  if err:match("<eof>'?$") then return nil, "incomplete" end
  return nil, err
end

---------------------------------------------------------------------------
-- Completion: globals, fields, and after `:` methods only
---------------------------------------------------------------------------
local keywords = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
                   "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true",
                   "until", "while" }

-- The value's fields as seen through __index tables (never calling an
-- __index function: completion must not run code that waits or costs).
local function each_field(value, visit)
  local seen_tables = {}
  local t = value
  if type(t) == "string" then t = string end
  for _ = 1, 16 do
    if type(t) == "table" and not seen_tables[t] then
      seen_tables[t] = true
      for k, v in pairs(t) do
        if type(k) == "string" then visit(k, v) end
      end
    end
    local mt = getmetatable(t)
    if type(mt) ~= "table" then break end
    local index = rawget(mt, "__index")
    if type(index) ~= "table" then break end
    t = index
  end
end

-- The field `key` of `value`, following __index tables only.
local function field(value, key)
  if type(value) == "string" then return rawget(string, key) end
  local t = value
  for _ = 1, 16 do
    if type(t) == "table" then
      local v = rawget(t, key)
      if v ~= nil then return v end
    end
    local mt = getmetatable(t)
    if type(mt) ~= "table" then return nil end
    local index = rawget(mt, "__index")
    if type(index) ~= "table" then return nil end
    t = index
  end
  return nil
end

-- M.complete(word, line, env) -> sorted candidates that replace `word`
-- (libedit's word: `.` and `:` are part of it).
function M.complete(word, _, env)
  env = env or _G
  local found, out = {}, {}
  local function add(candidate)
    if not found[candidate] then
      found[candidate] = true
      out[#out + 1] = candidate
    end
  end
  local base, sep, partial = word:match("^(.-)([%.:])([%w_]*)$")
  if not base then
    if not word:match("^[%a_]?[%w_]*$") then return out end
    each_field(env, function(k)
      if k:sub(1, #word) == word and k:match("^[%a_][%w_]*$") then add(k) end
    end)
    for _, k in ipairs(keywords) do
      if k:sub(1, #word) == word then add(k) end
    end
  else
    -- base must be a plain chain of names: a.b.c
    if not base:match("^[%a_][%w_]*$") and not base:match("^[%a_][%w_%.]*[%w_]$") then return out end
    local value = env
    for name in base:gmatch("[^%.]+") do
      value = field(value, name)
      if value == nil then return out end
    end
    if type(value) ~= "table" and type(value) ~= "userdata" and type(value) ~= "string" then
      return out
    end
    if sep == "." and type(value) == "string" then return out end
    each_field(value, function(k, v)
      if k:sub(1, #partial) ~= partial or not k:match("^[%a_][%w_]*$") then return end
      -- metamethods only when asked for (`mt.__`)
      if k:sub(1, 2) == "__" and partial:sub(1, 2) ~= "__" then return end
      if sep == ":" and type(v) ~= "function" then return end
      add(base .. sep .. k)
    end)
  end
  table.sort(out)
  return out
end

---------------------------------------------------------------------------
-- Output
---------------------------------------------------------------------------
local colour_stdout, colour_stderr = false, false
local interactive = false  -- reading from a terminal

local function paint(name, text, on_stderr)
  if on_stderr then return colour_stderr and util.colour(name, text, 2) or text end
  return colour_stdout and util.colour(name, text, 1) or text
end

local function report_error(err, prefix)
  err = errors.wrap(err)
  local line
  if err.kind == "interrupted" or err.kind == "cancelled" then
    -- after the ^C the terminal echoed
    line = (interactive and "\n" or "") .. "interrupted"
  else
    line = tostring(err)
    if err.kind ~= "error" then
      local at = errors.location(err)
      if at then line = line .. " (at " .. at .. ")" end
    end
  end
  io.stdout:flush()
  io.stderr:write(paint("red", (prefix or "") .. line, true), "\n")
  local runtime = package.loaded["spritescript.runtime"]
  if runtime and runtime.verbose and err.traceback and err.traceback ~= "" then
    io.stderr:write(err.traceback, "\n")
  end
end

local function print_results(r)
  if r.n == 0 then return end
  local parts = {}
  for i = 1, r.n do
    -- A string result prints as it is (as Lua's own REPL does); inside
    -- tables strings are quoted.
    parts[i] = type(r[i]) == "string" and r[i] or pretty.format(r[i], { colour = colour_stdout })
  end
  io.stdout:write(table.concat(parts, "\t"), "\n")
  io.stdout:flush()
end

---------------------------------------------------------------------------
-- Lines as tasks
---------------------------------------------------------------------------
local repl = {
  current = nil,     -- the running line: {task=, interrupts=}
  background = {},   -- line tasks whose body returned (or failed) but still run
}

-- Runs fn as the line's task and waits until its body is done (what it
-- spawned may run on). Returns ok, results-or-error.
local function run_line(fn)
  local settled = task.event()
  local outcome
  local t = task.spawn(function()
    task.sleep(0)  -- the REPL detaches this task before anything in it can fail
    local r = pack(xpcall(fn, errors.handler))
    outcome = r
    settled:set()
    -- A failed line fails its task: what it spawned is cancelled.
    if not r[1] then error(r[2], 0) end
  end)
  t:detach()
  local line = { task = t, interrupts = 0 }
  repl.current = line
  if t.co then lineedit.set_interruptible(t.co) end
  local ok, err = pcall(settled.wait, settled)
  lineedit.set_interruptible(nil)
  repl.current = nil
  if not ok then  -- the REPL itself was cancelled (Ctrl-C on a script's stdin)
    t:cancel()
    error(err, 0)
  end
  if t.state ~= "done" or not t.ok then
    repl.background[#repl.background + 1] = { task = t, reported = not outcome[1] }
  end
  if outcome[1] then return true, pack(unpack(outcome, 2, outcome.n)) end
  return false, outcome[2]
end

-- Reports the background line tasks that ended with an error nobody saw.
local function reap_background()
  local still = {}
  for _, entry in ipairs(repl.background) do
    local t = entry.task
    if t.state == "done" then
      local ok, err = t:pwait()  -- observes it: not reported again at exit
      if not ok and not entry.reported and t:status() ~= "cancelled" then
        report_error(err, "background task failed: ")
      end
    else
      still[#still + 1] = entry
    end
  end
  repl.background = still
end

-- Ctrl-C during a line: cancel that line (a second one exits, for a line
-- whose cleanup does not end).
local function watch_interrupts()
  while true do
    local interrupted = task.await(lineedit.wait_interrupt())
    if not interrupted then return end
    lineedit.set_interruptible(nil)
    local line = repl.current
    if line then
      line.interrupts = line.interrupts + 1
      if line.interrupts >= 2 then
        io.stderr:write("\nspritescript repl: interrupted twice, exiting now\n")
        os.exit(130)
      end
      line.task:cancel("interrupted")
    end
  end
end

---------------------------------------------------------------------------
-- `!cmd`: a shell command in the bound sprite, its output as it comes
---------------------------------------------------------------------------
local function shell(command)
  local target = rawget(_G, "s")
  if type(target) ~= "table" or type(target.spawn) ~= "function" then
    errors.raise("usage", "!: no sprite bound (`s` is not a sprite); start with 'spritescript repl NAME'", nil, 2)
  end
  -- stderr joins stdout in the sprite, so the two keep their order.
  local p = target:spawn("exec 2>&1\n" .. command)
  while true do
    local piece = p:read("stdout")
    if piece == nil then break end
    io.stdout:write(piece)
    io.stdout:flush()
  end
  local code = p:wait()
  if code ~= 0 then io.stderr:write(paint("dim", "exit " .. tostring(code), true), "\n") end
end

---------------------------------------------------------------------------
-- History
---------------------------------------------------------------------------
function M.history_path()
  local base = os.getenv("XDG_STATE_HOME")
  if not base or base == "" then
    local home = os.getenv("HOME")
    if not home or home == "" then return nil end
    base = home .. "/.local/state"
  end
  return base .. "/spritescript/repl_history"
end

---------------------------------------------------------------------------
-- The command
---------------------------------------------------------------------------
local function bind_sprite(opts, positional)
  if opts.sprite and positional[1] and opts.sprite ~= positional[1] then
    util.usage("two sprites given ('" .. positional[1] .. "' and -s '" .. opts.sprite .. "'); pass one")
  end
  -- NAME, -s, the nearest .sprite, the config's default_sprite; or none.
  local found, name = pcall(util.sprite_name, opts.sprite or positional[1])
  if not found then
    if errors.is(name, "usage") then return nil end
    error(name, 0)
  end
  return api.get(name)
end

function M.repl(argv)
  local opts, positional = util.parse(argv, {
    short = { s = "sprite" }, options = { sprite = "string" }, max = 1, usage = USAGE,
  })
  local bound = bind_sprite(opts, positional)
  rawset(_G, "s", bound)

  local terminal = lineedit.is_terminal()
  interactive = terminal
  colour_stdout = util.is_terminal(1) and util.colour("red", "x", 1) ~= "x"
  colour_stderr = util.is_terminal(2) and util.colour("red", "x", 2) ~= "x"

  local history = terminal and M.history_path() or nil
  local watcher
  if terminal then
    lineedit.set_completer(function(word, line) return M.complete(word, line) end)
    if history then lineedit.load_history(history) end
    lineedit.catch_interrupts(true)
    watcher = task.spawn(watch_interrupts)
    local about = bound and ("s is " .. paint("cyan", "sprite " .. bound.name, true))
      or "no sprite bound: s is nil (pass NAME or -s NAME, or run 'spritescript use NAME')"
    io.stderr:write("spritescript repl: ", about, paint("dim", "; !cmd runs a shell command in it, Ctrl-D exits", true), "\n")
  end
  local prompt = (bound and bound.name or "lua") .. "> "
  local continuation = string.rep(" ", #prompt - 3) .. ">> "

  local function finish()
    if terminal then
      lineedit.catch_interrupts(false)
      lineedit.set_completer(nil)
    end
    if watcher then watcher:cancel() end
    -- What lines spawned and is still running ends with the REPL.
    for _, entry in ipairs(repl.background) do entry.task:cancel("the REPL exited") end
    for _, entry in ipairs(repl.background) do entry.task:pwait() end
    repl.background = {}
  end

  local buffer = nil  -- the chunk so far, when it spans lines
  local ok, err = pcall(function()
    while true do
      reap_background()
      local line = task.await(lineedit.read_line(buffer and continuation or prompt))
      if line == nil then  -- end of input
        if terminal then io.stdout:write("\n") end
        if buffer then
          local _, message = M.compile(buffer .. "\n")
          if message == "incomplete" then message = "stdin: the input ended inside a chunk" end
          report_error(message)
        end
        break
      end
      if line == false then  -- Ctrl-C at the prompt
        buffer = nil
      elseif not buffer and line:match("^%s*!") then
        local command = line:match("^%s*!(.*)$")
        if terminal then lineedit.add_history(line) end
        if command:match("%S") then
          local done, failure = run_line(function() shell(command) end)
          if not done then report_error(failure) end
        end
      else
        local source = buffer and (buffer .. "\n" .. line) or line
        if not buffer and not source:match("%S") then
          -- an empty line: nothing to do
        else
          local fn, how = M.compile(source)
          -- Typed code runs in LuaJIT's interpreter on a terminal: the
          -- Ctrl-C hook cannot stop a loop compiled to machine code.
          if fn and terminal then jit.off(fn, true) end
          if how == "incomplete" then
            buffer = source
          else
            buffer = nil
            if terminal then lineedit.add_history(source) end
            if not fn then
              report_error(how)
            else
              local done, result = run_line(fn)
              if not done then
                report_error(result)
              elseif how == true then
                if result.n > 0 then rawset(_G, "_", result[1]) end
                print_results(result)
              end
            end
          end
        end
      end
      io.stdout:flush()
      if history then lineedit.save_history(history, HISTORY_SIZE) end
    end
  end)
  task.shield(finish)
  if not ok then error(err, 0) end
  return 0
end

return M
