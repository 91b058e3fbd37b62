"""CLI subcommands, one module each (see ssdmobile/cli.py)."""
