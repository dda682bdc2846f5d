-- Shared by the wrk scripts of bench/run.sh: numbers the threads (`tid`) and counts answers a
-- script's response() finds wrong. done() prints "unexpected answers: N" (and the first one);
-- run.sh fails the run when N > 0. A script that defines no response() checks nothing here
-- (wrk then still counts non-2xx answers itself).
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

bad = 0
first_bad = nil

-- Count the answer as unexpected unless `ok`.
function expect(ok, status, body)
  if not ok then
    bad = bad + 1
    if not first_bad then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local n, sample = 0, nil
  for _, t in ipairs(threads) do
    n = n + (t:get("bad") or 0)
    sample = sample or t:get("first_bad")
  end
  io.write(string.format("unexpected answers: %d\n", n))
  if sample then
    io.write("first unexpected answer: " .. sample .. "\n")
  end
end
