"""Allow ``python -m hygiene``."""

from hygiene.cli import main

main()
