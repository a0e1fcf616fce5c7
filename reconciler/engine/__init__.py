"""The orchestrator (octoDNS's `Manager`): one object owns a sync from lock to e-mail
(`manager.SyncEngine`; what commands hand it and get back in `interface`), with its steps:
the checks before any request (`checks`), planning against the live systems (`planning`),
the writes (`writing`), failures before the first write (`failures`), e-mails and chat
(`notices`), the daily schedule (`due`), each command's request statistics and time limit
(`metering`), the unmapped-usage check (`unmapped`); and the config-directory lock,
interruption, the API client factory, the status check and the reads behind `discover` and
`report`.

Imports: everything below it (core, secure, config, plan, net, connectwise, usage) and its
siblings records, notify, insight. Never `reconciler.cli`.
"""
