"""Subcommands of the ``sushi`` CLI, one module each."""
