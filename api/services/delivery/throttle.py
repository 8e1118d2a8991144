"""Per-endpoint throttleRate in Redis (GCRA slots).

It uses Redis server time, so every worker process shares one clock and one budget. (The
per-endpoint concurrency cap is enforced by the claim: claim.py.)
"""

from __future__ import annotations

import logging

import redis

logger = logging.getLogger(__name__)

# Throttle: reserve the endpoint's next free slot (spacing 1/rate, no burst). A delivery whose
# slot is further away than `inline` keeps its reservation and is parked until then, so the
# slot is not consumed twice when it comes back.
_THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period, inline, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reserved = redis.call('GET', KEYS[2])
if reserved then
  local wait = tonumber(reserved) - now
  if wait <= inline then redis.call('DEL', KEYS[2]) end
  return tostring(wait)
end
local start = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local tat = start + period
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
local wait = start - now
if wait > inline then
  redis.call('SET', KEYS[2], tostring(start), 'EX', math.ceil(wait) + ttl)
end
return tostring(wait)
"""

THROTTLE_FAIL_CLOSED_WAIT = 5.0


def reserve_slot(
    client: redis.Redis, endpoint_id: str, delivery_id: str, rate: float, inline: float = 1.0
) -> float:
    """Seconds until this delivery may be sent to an endpoint limited to `rate` msgs/s.

    <= inline: send (after sleeping that long); more: park the delivery that long (the slot
    stays reserved for it). Redis errors fail closed: the caller parks it for a few seconds.
    """
    try:
        script = client.register_script(_THROTTLE)
        keys = [f"herald:throttle:{endpoint_id}", f"herald:throttle:res:{delivery_id}"]
        wait = float(script(keys=keys, args=[1.0 / rate, inline, 3600]))
    except redis.RedisError:
        logger.warning("throttle.unavailable", extra={"endpoint_id": endpoint_id}, exc_info=True)
        return THROTTLE_FAIL_CLOSED_WAIT
    return max(0.0, wait)
