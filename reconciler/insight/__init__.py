"""Read-only insight, pure: `discover` proposes mappings (`discover`, `matching`,
`discover_output`), `report` compares usage with billing (`report`, `report_render`).
The reads they work on are made by `reconciler.engine.insight_reads`.

Imports: core, secure, config, plan. Never net, API clients, engine or cli.
"""
