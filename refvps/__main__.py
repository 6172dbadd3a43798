"""``python -m refvps`` = the ``refvps`` command."""
from refvps.cli import main

main()
