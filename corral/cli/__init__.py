"""The ``corral`` command: typer + rich. One module per command group."""
