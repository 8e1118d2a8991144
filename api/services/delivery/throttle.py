"""Per-endpoint flow control in Redis: a throttleRate (GCRA slots) and a concurrency cap.

Both use Redis server time, so every worker process shares one clock and one budget.
"""

from __future__ import annotations

import logging
import math

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

# Concurrency cap: a sorted set of holders scored by their expiry (a dead worker's slot frees).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
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


def acquire_slot(
    client: redis.Redis, endpoint_id: str, holder: str, limit: int, hold_seconds: float
) -> bool:
    """Take one of the endpoint's `limit` in-flight slots (expires after `hold_seconds`)."""
    if limit <= 0:
        return True
    try:
        script = client.register_script(_ACQUIRE)
        ms = max(1000, math.ceil(hold_seconds * 1000))
        return bool(script(keys=[f"herald:inflight:{endpoint_id}"], args=[holder, limit, ms]))
    except redis.RedisError:  # fail open: the cap protects fairness, not the receiver
        logger.warning("concurrency.unavailable", extra={"endpoint_id": endpoint_id}, exc_info=True)
        return True


def release_slot(client: redis.Redis, endpoint_id: str, holder: str) -> None:
    """Give back an in-flight slot taken with acquire_slot."""
    try:
        client.zrem(f"herald:inflight:{endpoint_id}", holder)
    except redis.RedisError:
        logger.warning("concurrency.release_failed", extra={"endpoint_id": endpoint_id})
