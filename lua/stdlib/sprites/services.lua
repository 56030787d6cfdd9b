-- sprites.services: a sprite's services and exec sessions from Lua
-- (docs/lua-api.md, "Services" and "Sessions"). Installed into
-- sprites.api's Sprite by api.lua.
local M = {}

function M.install(api, h)
  local client, task, errors, call = h.client, h.task, h.errors, h.call
  local check_options, set, process_of = h.check_options, h.set, h.process_of
  local Sprite = api.Sprite

  -- Argument checks raise `usage` at the script's line (level 3: the
  -- checker, the method, the script).
  local function check_name(what, name, label)
    if type(name) ~= "string" or name == "" then
      errors.raise("usage", ("%s: expected %s as a string"):format(what, label or "a service name"), nil, 3)
    end
  end

  local function check_type(what, opts, key, expected)
    local v = opts[key]
    if v ~= nil and type(v) ~= expected then
      errors.raise("usage", ("%s: %s must be a %s, not a %s"):format(what, key, expected, type(v)), nil, 3)
    end
  end

  local function check_seconds(what, opts, key)
    local v = opts[key]
    if v ~= nil and (type(v) ~= "number" or v < 0) then
      errors.raise("usage", ("%s: %s is a number of seconds (0 or more)"):format(what, key), nil, 3)
    end
  end

  -- Reads an event stream to its end, calling on_event(event) for each in
  -- this task (as checkpoints' on_progress); returns them all.
  local function drain(what, events, on_event)
    local all = {}
    while true do
      local event = call(what, events:next())
      if event == nil then return all end
      all[#all + 1] = event
      if on_event then on_event(event) end
    end
  end

  -- The value of an op, or nil when it failed with not_found.
  local function or_nil(what, op, id)
    local value, err = task.await(op, id, what)
    if value == nil and type(err) == "table" then
      if err.kind == "not_found" then return nil end
      errors.raise(err.kind or "api", err.message or what,
                   { status = err.status, code = err.code, op = what }, 3)
    end
    return value
  end

  ---------------------------------------------------------------------------
  -- Services
  ---------------------------------------------------------------------------

  -- s:services() -> array of services (definition and state)
  function Sprite:services()
    return call("list services of " .. self.name, client.services(self.name))
  end

  -- s:service(name) -> service, or nil when there is none by that name
  function Sprite:service(name)
    check_name("sprite:service", name)
    local op, id = client.service(self.name, name)
    return or_nil(("get service %s of %s"):format(name, self.name), op, id)
  end

  local create_options = set("cmd", "args", "env", "dir", "needs", "http_port", "duration", "on_event")

  -- s:create_service(name, {cmd=, args=, env=, dir=, needs=, http_port=,
  -- duration=, on_event=}) -> service, events. Creates or replaces the
  -- service and (re)starts it; its events for `duration` seconds (server
  -- default 5) go to on_event and are returned.
  function Sprite:create_service(name, opts)
    local what = "sprite:create_service"
    opts = check_options(what, opts, create_options)
    check_name(what, name)
    local cmd, args = opts.cmd, opts.args
    if type(cmd) == "table" then  -- an argv: {"python3", "-m", "http.server"}
      if args ~= nil then errors.raise("usage", what .. ": give args in cmd or in args, not both", nil, 2) end
      args = {}
      for i = 2, #cmd do args[i - 1] = tostring(cmd[i]) end
      cmd = cmd[1]
    end
    if type(cmd) ~= "string" or cmd == "" then
      errors.raise("usage", what .. ": cmd (the executable, or an argv table) is required", nil, 2)
    end
    check_type(what, opts, "env", "table")
    check_type(what, opts, "dir", "string")
    check_type(what, opts, "needs", "table")
    check_type(what, opts, "http_port", "number")
    check_type(what, opts, "on_event", "function")
    check_seconds(what, opts, "duration")
    if args ~= nil and type(args) ~= "table" then errors.raise("usage", what .. ": args must be a table", nil, 2) end
    local definition = { cmd = cmd, args = args, env = opts.env, dir = opts.dir, needs = opts.needs,
                         http_port = opts.http_port }
    local op_name = ("create service %s of %s"):format(name, self.name)
    local events = drain(op_name, call(op_name, client.put_service(self.name, name, definition, opts.duration)),
                         opts.on_event)
    return self:service(name), events
  end

  local function lifecycle(verb, key, fn)
    local what = "sprite:" .. verb .. "_service"
    local allowed = set(key, "on_event")
    return function(self, name, opts)
      opts = check_options(what, opts, allowed)
      check_name(what, name)
      check_seconds(what, opts, key)
      check_type(what, opts, "on_event", "function")
      local op_name = ("%s service %s of %s"):format(verb, name, self.name)
      return drain(op_name, call(op_name, fn(self.name, name, opts[key])), opts.on_event)
    end
  end

  -- s:start_service(name, {duration=, on_event=}) -> events
  Sprite.start_service = lifecycle("start", "duration", client.start_service)
  -- s:stop_service(name, {timeout=, on_event=}) -> events (TERM, KILL after timeout)
  Sprite.stop_service = lifecycle("stop", "timeout", client.stop_service)
  -- s:restart_service(name, {duration=, on_event=}) -> events
  Sprite.restart_service = lifecycle("restart", "duration", client.restart_service)

  local logs_options = set("lines", "duration", "on_event")

  -- s:service_logs(name, {lines=, duration=, on_event=}) -> events: the last
  -- `lines` buffered ones (all without), then new ones for `duration` seconds
  function Sprite:service_logs(name, opts)
    local what = "sprite:service_logs"
    opts = check_options(what, opts, logs_options)
    check_name(what, name)
    check_seconds(what, opts, "duration")
    if opts.lines ~= nil and (type(opts.lines) ~= "number" or opts.lines < 0) then
      errors.raise("usage", what .. ": lines is a count (0 or more)", nil, 2)
    end
    check_type(what, opts, "on_event", "function")
    local op_name = ("logs of service %s of %s"):format(name, self.name)
    return drain(op_name, call(op_name, client.service_logs(self.name, name, opts.duration, opts.lines)),
                 opts.on_event)
  end

  function Sprite:delete_service(name)
    check_name("sprite:delete_service", name)
    call(("delete service %s of %s"):format(name, self.name), client.delete_service(self.name, name))
  end

  -- s:signal_service(name, signal): "TERM" (default), "HUP", "SIGUSR1", 9...
  function Sprite:signal_service(name, signal)
    check_name("sprite:signal_service", name)
    call(("signal service %s of %s"):format(name, self.name),
         client.signal_service(self.name, name, signal ~= nil and tostring(signal) or "TERM"))
  end

  ---------------------------------------------------------------------------
  -- Sessions
  ---------------------------------------------------------------------------

  -- s:sessions() -> {{id, command, workdir, created, is_active, tty, bytes_per_second}...}
  function Sprite:sessions()
    return call("list sessions of " .. self.name, client.sessions(self.name))
  end

  local function session_id(what, id)
    if type(id) == "table" then id = id.id or id.session_id end
    if type(id) == "number" then id = tostring(id) end
    if type(id) ~= "string" or id == "" then
      errors.raise("usage", what .. ": expected a session id (or a session from s:sessions())", nil, 3)
    end
    return id
  end

  -- s:attach(id) -> process (as s:spawn's): the output the session kept,
  -- then what comes
  function Sprite:attach(id)
    id = session_id("sprite:attach", id)
    local handle = call(("attach session %s on %s"):format(id, self.name), client.attach(self.name, id))
    local info = handle:info()
    return process_of(self, { info.command ~= "" and info.command or ("session " .. id) }, handle)
  end

  local kill_options = set("signal", "timeout", "on_event")

  -- s:kill_session(id, {signal="TERM", timeout=, on_event=}) -> events;
  -- timeout: seconds until KILL
  function Sprite:kill_session(id, opts)
    local what = "sprite:kill_session"
    opts = check_options(what, opts, kill_options)
    id = session_id(what, id)
    check_seconds(what, opts, "timeout")
    check_type(what, opts, "on_event", "function")
    local signal = opts.signal ~= nil and tostring(opts.signal) or "TERM"
    local op_name = ("kill session %s on %s"):format(id, self.name)
    return drain(op_name, call(op_name, client.kill_session(self.name, id, signal, opts.timeout)),
                 opts.on_event)
  end
end

return M
