"""HTTP plumbing shared by the API clients: the request loop with its retries, deadlines and
size cap (`http`), the one retry policy (`retry`), what a failed call reads as (`errors`),
answer bodies read up to the cap (`body`), what was sent and received (`stats`), how a client
talks HTTP as one value (`settings`), the keep-alive pool (`transport`) of HTTP/1.1
connections (`connection`), prioritised request slots
(`slots`), the API's rate (`throttle`), the run's time limit and total deadlines for blocking
calls (`deadline`), and all-or-none concurrency (`taskgroup`).

Imports: `reconciler.core`, `reconciler.secure`, `reconciler.config`, `reconciler.plan`
(nothing of the APIs themselves).
"""
