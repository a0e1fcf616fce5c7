"""Configuration: YAML with `file:line:col` (`yamlsource`), JSON Schema (`schema`: the
formats in `schema_formats`, readable messages in `schema_messages`; problems for machines
in `problem_output`), the validated `Config` (`loader` reads the files, `crosscheck`
checks across entries, `build` makes the model, `entries` is how both read a list file;
customers' `prices:` in `customer_prices`), credentials and API roots from the
environment (`env`), which URLs credentials may travel to (`urls`), the packaged schemas
and examples (`resources`), `init` (`scaffold`) and install pins (`pin`).

Imports: `reconciler.core`, `reconciler.secure`. No network I/O.
"""
