"""The delivery engine: a delivery's way, read top to bottom in this folder.

A `delivery` row is one run of getting one message to one endpoint. Its state:

    status           SENDING (3) while anything is left to do; then SUCCESS (0), FAIL (2) or
                     CANCELED (4), which are final (next_attempt_at NULL, lease_token NULL)
    next_attempt_at  while SENDING: when the row is due — the retry time, or, while leased,
                     the end of the lease
    lease_token      set while a claim holds the row; every write is fenced on it, so a stale
                     or duplicate execution changes nothing

    created leased ──► (task) load ──► send ──► record ──► SUCCESS
         │                 │                      ├──► SENDING, due at the retry time ──┐
         │                 │                      └──► FAIL (schedule exhausted, manual)│
         │                 ├──► CANCELED (endpoint disabled, payload purged)            │
         │                 └──► parked: SENDING, no lease, due soon (throttle, busy) ───┤
         └── task lost / worker dead: the lease runs out ──► due ◄──────────────────────┘
                                                               └──► claim (leased) ──► task

The modules, in that order:

    outbox.py       rows created already leased in the ingest transaction (`leased_row`,
                    `add_delivery` for resend/recover), published after the commit; deleting
                    an app's or endpoint's rows first (`delete_deliveries`, the lock order)
    claim.py        the dispatcher: due rows leased fairly per endpoint (FOR UPDATE SKIP
                    LOCKED), capped, published; a Redis that came back empty releases the
                    running leases in their second half (`release_if_broker_forgot`)
    leases.py       how long a lease lasts (`lease_deadline`, the one place it is computed)
                    and the renewal of the leases of the deliveries being sent
    load.py         the attempt's snapshot (`load_job`) under its lease; `fenced_update`;
                    `park`
    throttle.py     throttleRate slots and the per-endpoint concurrency cap (Redis)
    signing.py      Standard Webhooks signatures
    http_client.py  the HTTP client: SSRF guard (connects only to checked addresses), the
                    whole-request deadline, what of a response is stored
    record.py       the fenced result: attempt row, next state, endpoint health, the next row
                    of a chain — in one statement on PostgreSQL
    retry.py        the retry schedule and Retry-After
    deliver.py      `deliver(id, token)`: the task's body — load, throttle, send, record, chain

Every place that writes `status`, `next_attempt_at` or `lease_token`:

    outbox.leased_row           new rows: SENDING, leased (the ingest's one INSERT in
                                api/services/messages.py uses these rows too)
    outbox.delete_deliveries    deletes rows (app / endpoint deletion)
    claim._claim_postgresql, claim._claim_generic, claim._lease
                                due rows: new lease_token, next_attempt_at = lease end
    claim.claim_next_for_endpoint, record._RECORD_PG (nxt)
                                the next due row of the endpoint, leased for a chain
    claim.release_if_broker_forgot
                                second-half leases: next_attempt_at = now (due)
    leases.InFlight.renew       leases being sent: next_attempt_at = lease end
    load.load_job               CANCELED (disabled / purged); a short lease renewed
    load.park                   lease dropped, due again after a wait
    record.record (+ _RECORD_PG upd)
                                the attempt's outcome: SUCCESS / FAIL / SENDING at the retry
                                time, lease dropped; a purged chained row CANCELED
"""
