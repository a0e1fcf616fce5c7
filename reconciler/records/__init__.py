"""The sync log under runs/: the typed run record (`record`; its customers and their changes
in `customers`, their JSON form in `recordjson`), writing it (`runlog`, with the
write `journal` and the record's JSON `stream`), where runs live (`runfiles`), listing and
loading them and rebuilding INDEX.md (`activity`), per-run summaries (`runindex`), how runs
read (`runview`, `runchart`, `requestview`); and the ownership ledger, state/managed.json
(`ledger`).

Imports: core, secure, config, plan. Never the engine, notify or cli.
"""
