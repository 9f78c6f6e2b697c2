"""The ``raggio`` command line."""
