"""The delivery engine: a delivery's way, read top to bottom in this folder.

A `delivery` row is one run of getting one message to one endpoint. Its state:

    status           SENDING (3) while anything is left to do; then SUCCESS (0), FAIL (2) or
                     CANCELED (4), which are final (next_attempt_at NULL, lease_token NULL)
    next_attempt_at  while SENDING: when the row is due — now for a new row, the retry time,
                     the end of a park, or, while leased, the end of the lease
    lease_token      set while a pump holds the row; every write is fenced on it, so a stale
                     or duplicate execution changes nothing

    created due ──► claimed (leased, job joined) ──► sent ──► recorded ──► SUCCESS
        ▲                 │                                     ├──► FAIL (exhausted, manual)
        │                 ├──► CANCELED (endpoint disabled,     └──► SENDING, due at the
        │                 │    payload purged)                       retry time ──┐
        │                 └──► parked: SENDING, no lease, due after the throttle ─┤
        │   worker dead: the lease runs out ──► due ◄─────────────────────────────┘
        └── a pump claims due rows; the dispatcher wakes one when rows are due

One pump per worker process (pump.py) runs the loop: claim a batch (as many rows as it has
free senders, fair and capped per endpoint), send them concurrently, record what came back
in batches, claim again — until nothing is due. A burst of messages costs one wake-up task.

The modules, in that order:

    outbox.py       rows created due in the ingest transaction (`due_row`, `add_delivery`
                    for resend/recover); `wake()` after the commit, deduplicated by the awake
                    flag; deleting an app's or endpoint's rows first (`delete_deliveries`)
    claim.py        `claim_jobs`: due rows leased in a batch, at most HERALD_ENDPOINT_CONCURRENCY
                    per endpoint across all workers, FOR UPDATE SKIP LOCKED, each with its job;
                    `dispatch_due`: the dispatcher's pass, waking a pump when rows are due
    leases.py       how long a lease lasts (`lease_deadline`, the one place it is computed)
                    and the renewal of the leases a pump holds
    job.py          the Job snapshot an attempt needs; `fenced_update`
    pump.py         the loop, its sender threads and the awake flag
    send.py         one job: its throttle slot (a long wait parks it), the signed POST
    throttle.py     throttleRate slots (Redis, GCRA)
    signing.py      Standard Webhooks signatures: HMAC (`whsec_`) and Ed25519 (`whsk_`)
    http_client.py  the HTTP client: SSRF guard (connects only to checked addresses), the
                    whole-request deadline, what of a response is stored
    record.py       a batch of results: attempt rows, next states, parks, endpoint health —
                    fenced, one statement on PostgreSQL; a refused batch is recorded row by
                    row, a refused row without its response
    retry.py        the retry schedule and Retry-After
    vacuum.py       VACUUM of the queue table once dead row versions pile up (beat)

Every place that writes `status`, `next_attempt_at` or `lease_token`:

    outbox.due_row              new rows: SENDING, due now, no lease (the ingest's one INSERT
                                in api/services/messages.py uses these rows too)
    outbox.delete_deliveries    deletes rows (app / endpoint deletion), in id order
    claim.claim_jobs (_claim_postgresql, _claim_generic)
                                due rows: new lease_token, next_attempt_at = lease end; rows of
                                a disabled endpoint or a purged payload: CANCELED
    leases.InFlight.renew       leases being sent: next_attempt_at = lease end
    record.record_results (_RECORD_PG, _write_generic)
                                the attempt's outcome: SUCCESS / FAIL / SENDING at the retry
                                time; a park: SENDING at the throttle slot; lease dropped

Rows several at a time are locked in id order by every writer that waits for locks (record,
renewal, delete); the claim skips locked rows and never waits: no deadlock between them.
"""
