"""amibake's engine: templates, the build engine, the ledger and the local cloud.

Nothing in this package imports textual or rich; the UI lives in ``tui``.
"""

__version__ = "0.1.0"
