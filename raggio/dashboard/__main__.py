"""``python -m raggio.dashboard``: the dashboard's process (``main.py``)."""

from raggio.dashboard.main import main

main()
