"""HTTP plumbing shared by the API clients: retries, deadlines, size caps (`http`), the
transport (`transport`) and prioritised request slots (`slots`).

Imports: `reconciler.core`, `reconciler.secure`, `reconciler.config`, `reconciler.plan`
(nothing of the APIs themselves).
"""
