"""`python -m raven` runs the command line."""

from raven.cli import main

raise SystemExit(main())
