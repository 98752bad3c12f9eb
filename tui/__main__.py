import sys

from amibake.tui.cli import main

sys.exit(main())
