"""The sync log under runs/: the typed run record (`record`), writing and reading it
(`runlog`), per-run summaries (`runindex`), how runs read (`runview`, `runchart`,
`requestview`).

Imports: core, secure, config, plan. Never the engine, notify or cli.
"""
