"""Streamlit-side helpers of the dashboard: filter bar, cached data access, charts, formatting.

Only the pages and app.py import this package; ``data_access`` never imports streamlit.
"""
