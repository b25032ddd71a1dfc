-- pyhanzi.lua: a librime-lua filter that puts pyhanzi's whole-sentence conversion among
-- RIME's candidates.
--
-- For the pinyin of the segment being composed it asks a local `pyhanzi serve`
-- (POST /convert) and inserts the best sentence at a configurable position. Typing never
-- waits longer than `timeout_ms` on it: when the server is down, slow or answers with an
-- error, RIME's own candidates are shown unchanged, and after a failure the filter stops
-- asking for `backoff_ms`, so a stopped server costs nothing per keystroke.
--
-- Install (docs/IME.md): copy this file to <user dir>/lua/pyhanzi.lua and add the filter to
-- the schema (luna_pinyin.custom.yaml in this folder):
--   engine/filters/@before 0: lua_filter@*pyhanzi        (librime-lua of 2023 and later)
-- or, for an older librime-lua, put `pyhanzi_filter = require("pyhanzi")` in
-- <user dir>/rime.lua and use lua_filter@pyhanzi_filter.
--
-- Settings (schema keys, all optional):
--   pyhanzi/host: 127.0.0.1     pyhanzi/port: 8765
--   pyhanzi/timeout_ms: 150     longest wait for an answer per keystroke
--   pyhanzi/backoff_ms: 2000    no requests for this long after a failure
--   pyhanzi/position: 1         where the sentence goes among RIME's candidates (1 = first)
--   pyhanzi/count: 1            how many of pyhanzi's candidates to insert
--   pyhanzi/min_length: 1       shorter inputs are left to RIME alone
--   pyhanzi/comment: ""         shown beside pyhanzi's candidates
--   pyhanzi/transport: auto     socket (luasocket), curl (a curl process per request), auto
--
-- HTTP goes over luasocket (Debian: lua-socket) when it loads: a loopback request costs
-- well under a millisecond besides the conversion. Without it (Weasel and Squirrel ship no
-- luasocket) the filter runs `curl -m` through io.popen, which costs a process per keystroke.

local M = {}

local ok_socket, socket = pcall(require, 'socket')
if not ok_socket then socket = nil end

-- --- JSON: the request is one string and a number; the answer's candidate texts are read ----

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r',
                   ['\t'] = '\\t'}
    return named[c] or string.format('\\u%04x', c:byte())
  end) .. '"'
end

-- The JSON string starting at the quote at `i`; returns it and the index after it.
local function read_string(s, i)
  local out, j = {}, i + 1
  while j <= #s do
    local c = s:sub(j, j)
    if c == '"' then
      return table.concat(out), j + 1
    elseif c == '\\' then
      local e = s:sub(j + 1, j + 1)
      if e == 'u' then
        local code = tonumber(s:sub(j + 2, j + 5), 16)
        if not code then return nil end
        if code >= 0xD800 and code <= 0xDBFF and s:sub(j + 6, j + 7) == '\\u' then
          local low = tonumber(s:sub(j + 8, j + 11), 16)
          if low then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            j = j + 6
          end
        end
        out[#out + 1] = utf8.char(code)
        j = j + 6
      else
        local named = {n = '\n', r = '\r', t = '\t', b = '\b', f = '\f'}
        out[#out + 1] = named[e] or e
        j = j + 2
      end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
  return nil
end

-- The candidate texts of a /convert answer, best first.
function M.candidate_texts(body)
  local texts = {}
  local i = body:find('"candidates"%s*:%s*%[')
  if not i then return texts end
  while true do
    local _, quote = body:find('"text"%s*:%s*"', i)
    if not quote then break end
    local text, after = read_string(body, quote)
    if not text then break end
    texts[#texts + 1] = text
    i = after
  end
  return texts
end

-- --- HTTP ---------------------------------------------------------------------------------

local function now()
  if socket then return socket.gettime() end
  return os.time()  -- Whole seconds, enough for the back-off.
end

-- POST over luasocket with one deadline for connect, send and receive; returns the status
-- and the body, or nil and why.
local function post_socket(cfg, body)
  local deadline = socket.gettime() + cfg.timeout
  local tcp = socket.tcp()
  local function left()
    return deadline - socket.gettime()
  end
  tcp:settimeout(cfg.timeout)
  local ok, err = tcp:connect(cfg.host, cfg.port)
  if not ok then tcp:close(); return nil, err end
  local request = table.concat({
    'POST /convert HTTP/1.0', 'Host: ' .. cfg.host .. ':' .. cfg.port,
    'Content-Type: application/json', 'Content-Length: ' .. #body, '', body})
  tcp:settimeout(math.max(left(), 0.001))
  ok, err = tcp:send(request)
  if not ok then tcp:close(); return nil, err end
  local chunks = {}
  while true do
    if left() <= 0 then tcp:close(); return nil, 'timeout' end
    tcp:settimeout(left())
    local data, rerr, partial = tcp:receive(8192)
    if data then
      chunks[#chunks + 1] = data
    else
      if partial and #partial > 0 then chunks[#chunks + 1] = partial end
      if rerr == 'closed' then break end
      tcp:close()
      return nil, rerr
    end
  end
  tcp:close()
  local response = table.concat(chunks)
  local status = tonumber(response:match('^HTTP/%d%.%d (%d%d%d)'))
  local start = response:find('\r\n\r\n', 1, true)
  if not status or not start then return nil, 'not an HTTP answer' end
  return status, response:sub(start + 4)
end

local WINDOWS = package.config:sub(1, 1) == '\\'

-- One argument for io.popen's shell: POSIX sh, or cmd.exe on Windows (where curl.exe reads
-- \" inside double quotes as a quote). What is quoted here is JSON of letters and apostrophes
-- (the filter only asks about such input), a URL and curl's options.
local function shell_quote(s)
  if WINDOWS then return '"' .. s:gsub('"', '\\"') .. '"' end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- POST by running curl.
local function post_curl(cfg, body)
  local url = string.format('http://%s:%d/convert', cfg.host, cfg.port)
  local command = string.format(
      'curl -s -m %.3f -H %s --data-binary %s -w %s %s', cfg.timeout,
      shell_quote('Content-Type: application/json'), shell_quote(body),
      shell_quote('\\n%{http_code}'), shell_quote(url))
  local pipe = io.popen(command, 'r')
  if not pipe then return nil, 'cannot run curl' end
  local out = pipe:read('a') or ''
  pipe:close()
  local answer, code = out:match('^(.*)\n(%d+)$')
  local status = tonumber(code)
  if not status or status == 0 then return nil, 'no answer' end
  return status, answer
end

-- --- the filter ---------------------------------------------------------------------------

local function read_config(env)
  local config = env.engine.schema.config
  local function int(key, default)
    local v = config:get_int('pyhanzi/' .. key)
    if v == nil then return default end
    return v
  end
  local function str(key, default)
    local v = config:get_string('pyhanzi/' .. key)
    if v == nil or v == '' then return default end
    return v
  end
  local transport = str('transport', 'auto')
  if transport == 'auto' then transport = socket and 'socket' or 'curl' end
  if transport == 'socket' and not socket then transport = 'curl' end
  return {
    host = str('host', '127.0.0.1'),
    port = int('port', 8765),
    timeout = int('timeout_ms', 150) / 1000,
    backoff = int('backoff_ms', 2000) / 1000,
    position = math.max(int('position', 1), 1),
    count = math.max(int('count', 1), 1),
    min_length = int('min_length', 1),
    comment = config:get_string('pyhanzi/comment') or '',
    post = transport == 'socket' and post_socket or post_curl,
  }
end

function M.init(env)
  env.pyhanzi = read_config(env)
  env.pyhanzi_cache = {input = nil, texts = {}}
  env.pyhanzi_quiet_until = 0
end

-- pyhanzi's candidate texts for `input`, or {} (server down, slow, input it cannot read).
local function ask(env, input)
  local cfg, cache = env.pyhanzi, env.pyhanzi_cache
  if cache.input == input then return cache.texts end
  if now() < env.pyhanzi_quiet_until then return {} end
  local body = string.format('{"input": %s, "k": %d, "timeout_ms": %d}', json_string(input),
                             cfg.count, math.floor(cfg.timeout * 1000 + 0.5))
  local ok, status, answer = pcall(cfg.post, cfg, body)
  local texts = {}
  if ok and status == 200 then
    texts = M.candidate_texts(answer)
  elseif not (ok and status and status >= 400 and status < 500) then
    -- Down, slow or broken (a 4xx is only this input): stop asking for a while.
    env.pyhanzi_quiet_until = now() + cfg.backoff
    return {}
  end
  cache.input, cache.texts = input, texts
  return texts
end

function M.func(translation, env)
  local context = env.engine.context
  local segment = context.composition:back()
  local texts = {}
  if segment and segment:has_tag('abc') then
    local input = context.input:sub(segment.start + 1, segment._end)
    if #input >= env.pyhanzi.min_length and input:find('^[%a\']+$') then
      texts = ask(env, input)
    end
  end
  if #texts == 0 then
    for cand in translation:iter() do yield(cand) end
    return
  end
  local cfg = env.pyhanzi
  local ours = {}
  for i = 1, math.min(#texts, cfg.count) do ours[texts[i]] = true end
  local function yield_ours()
    for i = 1, math.min(#texts, cfg.count) do
      yield(Candidate('pyhanzi', segment.start, segment._end, texts[i], cfg.comment))
    end
  end
  local before = cfg.position - 1
  local placed = before == 0
  if placed then yield_ours() end
  for cand in translation:iter() do
    if not ours[cand.text] then
      yield(cand)
      before = before - 1
      if not placed and before == 0 then
        yield_ours()
        placed = true
      end
    end
  end
  if not placed then yield_ours() end
end

function M.fini(env) end

return M
