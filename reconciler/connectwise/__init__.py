"""ConnectWise PSA, a thin edge: the client (`client`), the reads behind a plan (`state`,
`directory`, `conditions`), request bodies (`payload`) and the writes of an apply
(`apply`).

Imports: core, secure, config, plan, net.
"""
