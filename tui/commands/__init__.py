"""Headless subcommands of the ``amibake`` CLI.

Each module exposes ``register(subparsers)``, adding its subcommands; a
subcommand's handler takes the parsed ``argparse.Namespace`` and returns the
process exit status. :mod:`tui.cli` lists the modules in ``COMMAND_MODULES``.
"""
