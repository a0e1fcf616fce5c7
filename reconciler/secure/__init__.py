"""Text nobody here controls, made safe for each place it is shown (`untrusted`), and
credentials scrubbed from everything we print or write (`scrub`).

Imports: `reconciler.core` only.
"""
