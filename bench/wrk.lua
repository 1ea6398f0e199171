-- wrk script for bench/run. Settings come from the environment:
--   BENCH_TOKENS   file of lines "token<TAB>shop-number" (one pre-minted token per shop)
--   BENCH_CASE     list | search | stats | get | create | update
--   BENCH_Q        the search text for "search"
--   BENCH_MEMBERS  members per shop (get/update pick member ids 1..BENCH_MEMBERS)
--   BENCH_COUNT    when "1", count every response status (load runs; costs some wrk CPU)
-- Requests rotate over the shops' tokens. Member ids are the data set's deterministic ones
-- (bench/data.sql: shop number and member number in hex). Ends with one line:
--   BENCH requests=.. duration_us=.. rps=.. p50_us=.. p99_us=.. non2xx=.. sockerr=.. statuses=..

local case = os.getenv("BENCH_CASE") or "list"
local tokens_file = os.getenv("BENCH_TOKENS")
local q = os.getenv("BENCH_Q") or "silva"
local members = tonumber(os.getenv("BENCH_MEMBERS") or "50")
local count = os.getenv("BENCH_COUNT") == "1"

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local function member_id(shop, member)
   return string.format("%08x-0000-4000-8000-%012x", shop, member)
end

local tokens, shops = {}, {}
local reqs = {}
local n, i = 0, 0
local counter = 0
statuses = {}  -- global: done() reads it from each thread
local stamp = tostring(os.time())

function init(args)
   for line in io.lines(tokens_file) do
      local token, shop = line:match("^([^\t]+)\t(%d+)")
      if token then
         table.insert(tokens, token)
         table.insert(shops, tonumber(shop))
      end
   end
   math.randomseed(os.time() + (tid or 0) * 7919)
   -- Pre-built requests for every case but create (whose emails must be unique).
   local per_shop = (case == "get" or case == "update") and 10 or 1
   for k = 1, #tokens do
      local h = { ["Authorization"] = "Bearer " .. tokens[k] }
      for j = 1, per_shop do
         local r
         if case == "list" then
            r = wrk.format("GET", "/api/v1/staff", h)
         elseif case == "search" then
            r = wrk.format("GET", "/api/v1/staff?q=" .. q, h)
         elseif case == "stats" then
            r = wrk.format("GET", "/api/v1/staff/stats", h)
         elseif case == "get" then
            r = wrk.format("GET", "/api/v1/staff/" .. member_id(shops[k], math.random(members)), h)
         elseif case == "update" then
            local hh = { ["Authorization"] = h["Authorization"], ["Content-Type"] = "application/json" }
            local body = string.format('{"department":"Lab %d","is_active":true}', math.random(9))
            r = wrk.format("PATCH", "/api/v1/staff/" .. member_id(shops[k], math.random(members)), hh, body)
         end
         if r then table.insert(reqs, r) end
      end
   end
   -- Shuffle so consecutive requests hit different shops, and threads start apart.
   for k = #reqs, 2, -1 do
      local j = math.random(k)
      reqs[k], reqs[j] = reqs[j], reqs[k]
   end
   n = #reqs
   i = (tid or 1) * 97
end

function request()
   i = i + 1
   if case == "create" then
      counter = counter + 1
      local k = (i % #tokens) + 1
      local body = string.format(
         '{"full_name":"Bench Person %d","email":"b%s.%d.%d@bench.example","role":"STAFF","department":"Sales"}',
         counter, stamp, tid or 0, counter)
      return wrk.format("POST", "/api/v1/staff",
         { ["Authorization"] = "Bearer " .. tokens[k], ["Content-Type"] = "application/json" }, body)
   end
   return reqs[(i % n) + 1]
end

if count then
   function response(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local all = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
         for code, c in pairs(s) do all[code] = (all[code] or 0) + c end
      end
   end
   local parts = {}
   for code, c in pairs(all) do table.insert(parts, code .. ":" .. c) end
   table.sort(parts)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d sockerr=%d statuses=%s\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), e.status,
      e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
