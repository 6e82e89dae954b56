-- wrk script: GET the connectors of a random charge point among CP_COUNT.
local count = tonumber(os.getenv("CP_COUNT") or "1")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/connectors/chargepoint/" .. math.random(1, count))
end
