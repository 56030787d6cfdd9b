-- sprites.network: TCP into a sprite from Lua (docs/lua-api.md, "Tunnels,
-- forwards and ports"): a tunnel to a port inside the sprite (s:tunnel), a
-- listener on this machine relaying every connection into the sprite
-- (s:forward, relayed in C++), and the sprite's listening ports as they
-- come and go (s:ports). Installed into sprites.api's Sprite by api.lua.
--
-- Tunnels, forwards and port watches belong to the task that opened them:
-- they close when its scope ends (sprites.defer), unless opened with
-- {keep = true} (tunnels and forwards).
local M = {}

function M.install(api, h)
  local client, task, errors, call = h.client, h.task, h.errors, h.call
  local check_options, set = h.check_options, h.set
  local Sprite = api.Sprite

  -- Argument checks raise `usage` at the script's line (level 3: the
  -- checker, the method, the script).
  local function check_port(what, port, name, low)
    if type(port) ~= "number" or port % 1 ~= 0 or port < (low or 1) or port > 65535 then
      errors.raise("usage", ("%s: %s must be an integer from %d to 65535"):format(
        what, name or "the port", low or 1), nil, 3)
    end
  end

  local function check_string(what, value, name)
    if value ~= nil and (type(value) ~= "string" or value == "") then
      errors.raise("usage", ("%s: %s must be a non-empty string"):format(what, name), nil, 3)
    end
  end

  ---------------------------------------------------------------------------
  -- Tunnels
  ---------------------------------------------------------------------------
  local Tunnel = {}
  Tunnel.__index = Tunnel
  api.Tunnel = Tunnel

  function Tunnel:__tostring() return self.what end

  local tunnel_options = set("host", "keep")

  -- s:tunnel(port, {host="localhost", keep=false}) -> tunnel: one TCP
  -- connection to host:port inside the sprite (its own names and loopback
  -- addresses). Nothing listening raises kind "network", code "ECONNREFUSED".
  function Sprite:tunnel(port, opts)
    local what = "sprite:tunnel"
    opts = check_options(what, opts, tunnel_options)
    check_port(what, port)
    check_string(what, opts.host, "host")
    local host = opts.host or "localhost"
    local name = ("tunnel to %s:%d in %s"):format(host, port, self.name)
    local handle = call(name, client.tunnel(self.name, port, host))
    local t = setmetatable({ sprite = self, port = port, host = host, handle = handle, what = name }, Tunnel)
    if not opts.keep then t.release = task.defer(function() handle:close() end) end
    return t
  end

  -- t:read() -> the next bytes the target sent (a string), or nil once it
  -- closed the connection (or t:close() was called)
  function Tunnel:read()
    return call("read from " .. self.what, self.handle:read())
  end

  -- t:write(data): returns once sent (a slow target slows the writer)
  function Tunnel:write(data)
    if type(data) ~= "string" then
      errors.raise("usage", "tunnel:write: data must be a string", nil, 2)
    end
    call("write to " .. self.what, self.handle:write(data))
  end

  -- t:close(): ends the connection (no half-close: both directions); a read
  -- waiting in another task returns nil. Does not wait.
  function Tunnel:close()
    self.handle:close()
    if self.release then
      self.release()
      self.release = nil
    end
  end

  -- t:info() -> {target=, bytes_read=, bytes_written=, closed=}
  function Tunnel:info() return self.handle:info() end

  ---------------------------------------------------------------------------
  -- Forwards
  ---------------------------------------------------------------------------
  local Forward = {}
  Forward.__index = Forward
  api.Forward = Forward

  function Forward:__tostring()
    return ("forward %s:%d -> %s:%d in %s"):format(self.host, self.local_port, self.remote_host,
                                                   self.remote_port, self.sprite.name)
  end

  local forward_options = set("local_port", "host", "remote_host", "keep")

  -- s:forward(remote_port, {local_port=0, host="127.0.0.1", remote_host="localhost",
  -- keep=false}) -> forward: listens on host:local_port here (0: any free
  -- port; fwd.local_port says which) and relays every connection through a
  -- tunnel of its own to remote_host:remote_port in the sprite.
  function Sprite:forward(remote_port, opts)
    local what = "sprite:forward"
    opts = check_options(what, opts, forward_options)
    check_port(what, remote_port, "the remote port")
    if opts.local_port ~= nil then check_port(what, opts.local_port, "local_port", 0) end
    check_string(what, opts.host, "host")
    check_string(what, opts.remote_host, "remote_host")
    local host = opts.host or "127.0.0.1"
    local remote_host = opts.remote_host or "localhost"
    local handle, message, kind = client.forward(self.name, remote_port, opts.local_port or 0, host,
                                                 remote_host)
    if not handle then
      errors.raise(kind or "network", ("forward to port %d of %s: %s"):format(remote_port, self.name, message),
                   { op = "forward" }, 2)
    end
    local f = setmetatable({
      sprite = self, remote_port = remote_port, remote_host = remote_host,
      host = host, local_port = handle:local_port(), handle = handle,
    }, Forward)
    if not opts.keep then f.release = task.defer(function() handle:close() end) end
    return f
  end

  -- fwd:close(): stops listening (new connections are refused) and closes
  -- the connections it relays. Does not wait.
  function Forward:close()
    self.handle:close()
    self.closed = true
    if self.release then
      self.release()
      self.release = nil
    end
  end

  -- fwd:connections() -> the number of connections open now
  function Forward:connections() return self.handle:stats().open end

  -- fwd:stats() -> {open=, accepted=, failed=, bytes_in=, bytes_out=, closed=, last_error=}
  function Forward:stats() return self.handle:stats() end

  ---------------------------------------------------------------------------
  -- Port events
  ---------------------------------------------------------------------------
  local Ports = {}
  Ports.__index = Ports
  api.Ports = Ports

  -- s:ports() -> an iterator of port events, {type="opened"|"closed", port=,
  -- address=, pid=}: first the ports listening now (as "opened"), then
  -- changes as they happen. It ends when closed (w:close(), from any task)
  -- or with the task that made it; its wait is a cancellation point.
  --   for ev in s:ports() do ... end
  function Sprite:ports()
    local name = "watch ports of " .. self.name
    local handle = call(name, client.watch_ports(self.name))
    local w = setmetatable({ sprite = self, handle = handle, what = name }, Ports)
    w.release = task.defer(function() handle:close() end)
    return w
  end

  -- w:next() -> the next event, nil once closed
  function Ports:next()
    if self.closed then return nil end
    local event = call(self.what, self.handle:next())
    if event == nil then self:close() end
    return event
  end

  -- The watch is its own iterator: `for ev in w do`.
  Ports.__call = Ports.next

  function Ports:close()
    if self.closed then return end
    self.closed = true
    self.handle:close()
    if self.release then
      self.release()
      self.release = nil
    end
  end
end

return M
