"""ConnectWise PSA, a thin edge: the client (`client`), the reads behind a plan (`state`,
`directory`, `conditions`), request bodies (`payload`), the writes of an apply (`apply`),
the just-in-time staleness read before them (`staleness`), and what answers show
(`confirm`) or re-reads verify (`verification`).

Imports: core, secure, config, plan, net.
"""
