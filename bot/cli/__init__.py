"""The ``sitrep`` command line: the entry point, one module per command group, doctor and chat."""
