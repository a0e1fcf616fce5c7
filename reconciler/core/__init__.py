"""The pure nouns and rules every layer shares: the model (configuration in `model`, usage
and ConnectWise state in `state`, plans in `plan`, apply results in `results`, the billing
`Period` in `periods`), which agreement a customer
mapping resolves to (`mapping`, asked by the reader and the planner), exact money, billing
periods, the sync schedule, errors, vocabulary, wording, what is billed, and the one atomic
write.

Imports: the standard library only (no other reconciler package). Nothing here does network
I/O; `files` is the single, tiny file-system edge the upper layers write through.
"""
