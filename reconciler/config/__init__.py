"""Configuration: YAML with `file:line:col` (`yamlsource`), JSON Schema (`schema`), the
validated `Config` (`loader`; customers' `prices:` in `customer_prices`), credentials and
API roots from the environment (`env`), which URLs credentials may travel to (`urls`), the
packaged schemas and examples (`resources`), `init` (`scaffold`) and install pins (`pin`).

Imports: `reconciler.core`, `reconciler.secure`. No network I/O.
"""
