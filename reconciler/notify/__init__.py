"""Telling people: the e-mails after a sync (`email`: the sync outcome, `sync_email`, and
agreements ending, `ending_email`), the daily unmapped e-mail (`unmapped_email`), their
delivery (`smtp`) and bodies (`mailbody`), chat webhooks (`chat`) and the pull-request plan
comment (`github`).

Imports: core, secure, config, plan, records, insight. Never the engine or cli.
"""
