"""HTTP plumbing shared by the API clients: retries, deadlines, size caps (`http`), how a
client talks HTTP as one value (`settings`), the transport (`transport`), prioritised request
slots (`slots`), the run's time limit and total deadlines for blocking calls (`deadline`),
and all-or-none concurrency (`taskgroup`).

Imports: `reconciler.core`, `reconciler.secure`, `reconciler.config`, `reconciler.plan`
(nothing of the APIs themselves).
"""
