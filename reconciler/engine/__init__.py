"""The orchestrator (octoDNS's `Manager`): one object owns a sync from lock to e-mail
(`manager`), with the config-directory lock, interruption, the API client factory, the
status check and the reads behind `discover` and `report`.

Imports: everything below it (core, secure, config, plan, net, connectwise, usage) and its
siblings records, notify, insight. Never `reconciler.cli`.
"""
