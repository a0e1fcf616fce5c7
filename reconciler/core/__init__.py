"""The pure nouns and rules every layer shares: the model, which agreement a customer
mapping resolves to (`mapping`, asked by the reader and the planner), exact money, billing
periods, the sync schedule, errors, vocabulary, wording, what is billed, and the one atomic
write.

Imports: the standard library only (no other reconciler package). Nothing here does network
I/O; `files` is the single, tiny file-system edge the upper layers write through.
"""
