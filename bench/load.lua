-- bench/load.lua -- wrk script for quiverd: POST /collections/<c>/search with real query
-- vectors, cycling through a file of prepared JSON bodies (one per line, written by
-- bench/load.sh from query.fvecs).
--   wrk -t2 -c8 -d10s -s bench/load.lua http://127.0.0.1:PORT -- BODIES_FILE COLLECTION
-- done() prints one machine-readable line:
--   RESULT requests=N qps=Q p50_us=A p99_us=B non2xx=E socket_errors=S

local bodies = {}
local next_body = 0
local path = "/collections/sift/search"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  local file = args[1] or os.getenv("QV_LOAD_BODIES")
  if args[2] then path = "/collections/" .. args[2] .. "/search" end
  -- QV_LOAD_CLOSE=1: a new connection for every request (clients without keep-alive)
  if os.getenv("QV_LOAD_CLOSE") == "1" then headers["Connection"] = "close" end
  local key = os.getenv("QV_API_KEY")
  if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
  for line in io.lines(file) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  if #bodies == 0 then error("no request bodies in " .. tostring(file)) end
  -- whole requests are formatted once here, so that wrk spends its time on sockets,
  -- not on string building (it shares the machine with the server)
  for i = 1, #bodies do bodies[i] = wrk.format("POST", path, headers, bodies[i]) end
  -- threads start at different offsets so they do not send the same query in step
  next_body = math.random(#bodies) - 1
end

function request()
  next_body = next_body % #bodies + 1
  return bodies[next_body]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d qps=%.1f p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
