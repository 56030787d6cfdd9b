-- sprites.policy: a sprite's policies from Lua (docs/lua-api.md,
-- "Policies"): the network policy, with allow/deny sugar (s:policy), the
-- decision for one name evaluated here (s:policy_allows), and the
-- privileges and resources policies. Installed into sprites.api's Sprite
-- by api.lua.
local json = require "sprites.json"

local M = {}

function M.install(api, h)
  local client, errors, call, set = h.client, h.errors, h.call, h.set
  local Sprite = api.Sprite

  local function sorted_names(allowed)
    local names = {}
    for name in pairs(allowed) do names[#names + 1] = name end
    table.sort(names)
    return table.concat(names, ", ")
  end

  -- As api.lua's check_options, and positional entries ({"github.com"})
  -- are a usage error too. Level 3: this, the method, the script.
  local function check_keys(what, opts, allowed)
    if type(opts) ~= "table" then
      errors.raise("usage", what .. ": options must be a table", nil, 3)
    end
    for key in pairs(opts) do
      if type(key) ~= "string" then
        errors.raise("usage", ("%s: expected an options table {%s}"):format(what, sorted_names(allowed)), nil, 3)
      elseif not allowed[key] then
        errors.raise("usage", ("%s: unknown option '%s' (known: %s)"):format(what, key, sorted_names(allowed)), nil, 3)
      end
    end
    return opts
  end

  local function check_type(what, value, name, expected)
    if value ~= nil and type(value) ~= expected then
      errors.raise("usage", ("%s: %s must be a %s, not a %s"):format(what, name, expected, type(value)), nil, 3)
    end
  end

  ---------------------------------------------------------------------------
  -- The network policy
  ---------------------------------------------------------------------------
  local policy_options = set("allow", "deny", "defaults", "rules", "preset")
  -- Named presets: what goes first and what closes the list (a catch-all
  -- last, so the policy means the same on any server, whatever it does
  -- with names no rule matches).
  local presets = {
    open = { last = "allow" },                      -- everything, minus the denies
    defaults = { defaults = true, last = "deny" },  -- the usual dev hosts and the allows only
    locked = { last = "deny" },                     -- the allows only
  }
  local rule_fields = set("domain", "action", "include")

  -- opts[key]: a name or an array of names.
  local function domain_list(what, opts, key)
    local v = opts[key]
    if v == nil then return {} end
    if type(v) == "string" then v = { v } end
    if type(v) ~= "table" then
      errors.raise("usage", ("%s: %s must be an array of domain names"):format(what, key), nil, 3)
    end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if n ~= #v then
      errors.raise("usage", ("%s: %s must be an array of domain names"):format(what, key), nil, 3)
    end
    for i, d in ipairs(v) do
      if type(d) ~= "string" or d == "" then
        errors.raise("usage", ("%s: %s[%d] must be a domain name (a non-empty string)"):format(what, key, i), nil, 3)
      end
    end
    return v
  end

  -- opts.rules: raw rules, each {domain=, action=} or {include=}, passed on
  -- as they are (the server validates them).
  local function raw_rules(what, rules)
    if rules == nil then return {} end
    local n = 0
    if type(rules) == "table" then
      for _ in pairs(rules) do n = n + 1 end
    end
    if type(rules) ~= "table" or n ~= #rules then  -- {domain=...} alone would be no rules at all
      errors.raise("usage", what .. ": rules must be an array of rules {domain=, action=} or {include=}", nil, 3)
    end
    for i, rule in ipairs(rules) do
      if type(rule) ~= "table" then
        errors.raise("usage", ("%s: rule %d must be a table {domain=, action=} or {include=}"):format(what, i), nil, 3)
      end
      for key, value in pairs(rule) do
        if not rule_fields[key] then
          errors.raise("usage", ("%s: rule %d has an unknown field '%s' (known: %s)"):format(
            what, i, tostring(key), sorted_names(rule_fields)), nil, 3)
        end
        if type(value) ~= "string" then
          errors.raise("usage", ("%s: rule %d: %s must be a string"):format(what, i, key), nil, 3)
        end
      end
    end
    return rules
  end

  -- s:policy() -> {rules = {...}}: the network policy ({rules = {}}:
  -- unrestricted).
  -- s:policy{allow=, deny=, defaults=, rules=, preset=} -> the policy sent:
  -- replaces it with {include="defaults"} (when defaults, or preset
  -- "defaults"), then an allow rule per name of allow, a deny rule per name
  -- of deny, the raw rules, and last the preset's catch-all ("*": deny for
  -- "defaults" and "locked", allow for "open").
  -- s:policy{} or s:policy(false): no rules, unrestricted.
  function Sprite:policy(opts)
    local what = "sprite:policy"
    if opts == nil then
      local policy = call("get network policy of " .. self.name, client.network_policy(self.name))
      json.array(policy.rules)
      return policy
    end
    if opts == false then opts = {} end
    opts = check_keys(what, opts, policy_options)
    check_type(what, opts.defaults, "defaults", "boolean")
    local preset = {}
    if opts.preset ~= nil then
      preset = presets[opts.preset]
      if not preset then
        errors.raise("usage", ("%s: preset is \"open\", \"defaults\" or \"locked\", not %s"):format(
          what, tostring(opts.preset)), nil, 2)
      end
    end
    local rules = {}
    if opts.defaults or preset.defaults then rules[#rules + 1] = { include = "defaults" } end
    for _, d in ipairs(domain_list(what, opts, "allow")) do rules[#rules + 1] = { domain = d, action = "allow" } end
    for _, d in ipairs(domain_list(what, opts, "deny")) do rules[#rules + 1] = { domain = d, action = "deny" } end
    for _, rule in ipairs(raw_rules(what, opts.rules)) do
      local copy = {}
      for k, v in pairs(rule) do copy[k] = v end
      rules[#rules + 1] = copy
    end
    -- "open" with nothing else is no rules at all (unrestricted).
    if preset.last and (preset.last == "deny" or #rules > 0) then
      rules[#rules + 1] = { domain = "*", action = preset.last }
    end
    call("set network policy of " .. self.name, client.set_network_policy(self.name, rules))
    return { rules = json.array(rules) }
  end

  -- Lowercase, without a trailing dot: how the engine compares names.
  local function normalize(name)
    name = name:lower()
    if name:sub(-1) == "." then name = name:sub(1, -2) end
    return name
  end

  -- How specifically `pattern` matches `host`: rank (2 exact, 1 a "*."
  -- wildcard, 0 "*") and the wildcard's suffix length; nil when it does not.
  local function specificity(pattern, host)
    if pattern == "*" then return 0, 0 end
    if pattern:sub(1, 2) == "*." then
      local suffix = pattern:sub(2)  -- ".example.com": any depth below, not the name itself
      if #host > #suffix and host:sub(-#suffix) == suffix then return 1, #suffix end
      return nil
    end
    if pattern == host then return 2, 0 end
    return nil
  end

  local by_defaults = "decided by include defaults"

  -- s:policy_allows(domain) -> true | false | nil, "decided by include
  -- defaults": the network policy's decision for `domain`, as the engine
  -- makes it (the policy is fetched; the decision is made here). Names
  -- compare case-insensitively, a trailing dot ignored; the most specific
  -- match wins (exact, then the wildcard with the longest suffix, then
  -- "*"); the same pattern with both actions: deny. No match: denied,
  -- unless there are no rules at all (unrestricted). The list behind
  -- {include="defaults"} is the server's: when it could decide (no rule
  -- matches, or the best match is a wildcard or "*" deny that a default
  -- allow could outrank), the answer is nil and that message.
  function Sprite:policy_allows(domain)
    if type(domain) ~= "string" or domain == "" then
      errors.raise("usage", "sprite:policy_allows: expected a domain name", nil, 2)
    end
    local host = normalize(domain)
    local policy = call("get network policy of " .. self.name, client.network_policy(self.name))
    if #policy.rules == 0 then return true end
    local defaults, rank, length, denied = false, nil, nil, false
    for _, rule in ipairs(policy.rules) do
      if rule.include == "defaults" then
        defaults = true
      elseif rule.domain then
        local r, n = specificity(normalize(rule.domain), host)
        if r and (rank == nil or r > rank or (r == rank and n > length)) then
          rank, length, denied = r, n, rule.action ~= "allow"
        elseif r and r == rank and n == length then
          denied = denied or rule.action ~= "allow"
        end
      end
    end
    if rank == nil then
      if defaults then return nil, by_defaults end
      return false
    end
    if denied and rank < 2 and defaults then return nil, by_defaults end
    return not denied
  end

  ---------------------------------------------------------------------------
  -- Privileges and resources (stored and reported; the local engine does
  -- not enforce them)
  ---------------------------------------------------------------------------

  -- The decoded JSON of a policy op.
  local function decoded(text)
    return json.decode(text)
  end

  -- {profile, devices, noNewPrivileges} on the wire; snake_case in Lua.
  local function privileges_of(t)
    if t.noNewPrivileges ~= nil then
      t.no_new_privileges = t.noNewPrivileges
      t.noNewPrivileges = nil
    end
    return t
  end

  local privilege_options = set("profile", "devices", "no_new_privileges")
  local profiles = set("", "minimal", "standard", "privileged")

  -- s:privileges() -> {profile, devices, no_new_privileges}
  -- s:privileges{profile=, devices=, no_new_privileges=} -> the stored
  -- policy: replaces it (a field not given takes its default: "", {}, false)
  -- s:privileges(false): back to the default (unrestricted)
  function Sprite:privileges(opts)
    local what = "sprite:privileges"
    local name = "privileges policy of " .. self.name
    if opts == nil then
      return privileges_of(decoded(call("get " .. name, client.policy(self.name, "privileges"))))
    end
    if opts == false then
      call("delete " .. name, client.delete_policy(self.name, "privileges"))
      return
    end
    opts = check_keys(what, opts, privilege_options)
    check_type(what, opts.profile, "profile", "string")
    if opts.profile ~= nil and not profiles[opts.profile] then
      errors.raise("usage", ("%s: profile is \"minimal\", \"standard\", \"privileged\" or \"\", not %q"):format(
        what, opts.profile), nil, 2)
    end
    check_type(what, opts.devices, "devices", "table")
    check_type(what, opts.no_new_privileges, "no_new_privileges", "boolean")
    local devices = json.array()
    for i, d in ipairs(opts.devices or {}) do
      if type(d) ~= "string" then
        errors.raise("usage", ("%s: devices[%d] must be a string"):format(what, i), nil, 2)
      end
      devices[i] = d
    end
    local body = json.encode({
      profile = opts.profile or "", devices = devices, noNewPrivileges = opts.no_new_privileges == true,
    })
    return privileges_of(decoded(call("set " .. name, client.set_policy(self.name, "privileges", body))))
  end

  local resource_options = set("memory")
  local memory_options = set("limit_mb", "autoscale")

  -- s:resources() -> {memory = {limit_mb, autoscale}}
  -- s:resources{memory = {limit_mb=, autoscale=}} -> the stored policy
  -- (replaces it)
  -- s:resources(false): back to the default
  function Sprite:resources(opts)
    local what = "sprite:resources"
    local name = "resources policy of " .. self.name
    if opts == nil then
      return decoded(call("get " .. name, client.policy(self.name, "resources")))
    end
    if opts == false then
      call("delete " .. name, client.delete_policy(self.name, "resources"))
      return
    end
    opts = check_keys(what, opts, resource_options)
    local body = {}
    if opts.memory ~= nil then
      local memory = check_keys(what .. ": memory", opts.memory, memory_options)
      local limit = memory.limit_mb
      if limit ~= nil and (type(limit) ~= "number" or limit % 1 ~= 0 or limit <= 0) then
        errors.raise("usage", what .. ": memory.limit_mb must be a whole number of MiB above 0", nil, 2)
      end
      check_type(what, memory.autoscale, "memory.autoscale", "boolean")
      body.memory = json.object({ limit_mb = limit, autoscale = memory.autoscale == true })
    end
    return decoded(call("set " .. name, client.set_policy(self.name, "resources", json.encode(body))))
  end
end

return M
