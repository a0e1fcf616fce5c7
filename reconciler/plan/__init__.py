"""Pure planning: (config, usage, ConnectWise state) -> Plan (`planner`; customers planned
together in `units`, one agreement's lines in `lines`, orphans in `orphans`), the safety
thresholds (`safety`), prices as desired state (`pricing`), what a pull request itself
changes (`baseline`), the saved-plan format and its verification (`planfile`, `verify`,
`jsonshape`), and how plans read (`render`; against the base branch: `baseline_render`).
No I/O, no clock, no randomness.

Imports: `reconciler.core`, `reconciler.secure`, `reconciler.config`.
"""
