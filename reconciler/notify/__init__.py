"""Telling people: the e-mails (`email`), chat webhooks (`chat`) and the pull-request
plan comment (`github`).

Imports: core, secure, config, plan, records, insight. Never the engine or cli.
"""
