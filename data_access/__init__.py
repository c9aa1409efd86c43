"""bangfu data access: schema, migrations, ledger import, metric engine, demo data and the CLI.

This package never imports streamlit: the command line uses it as well as the pages.
"""
