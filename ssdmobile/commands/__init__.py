"""CLI subcommands, one module each (see ssdmobile/cli.py).

Every `ssdmobile` call imports every command module to build its parser, so a command module
imports only the light modules (errors, fileio, the target table, _args) at the top and the rest
inside the function that uses it: --help and argument mistakes answer without loading torch
(tests/test_cli_process.py times it)."""
