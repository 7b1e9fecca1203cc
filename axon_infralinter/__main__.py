"""`python -m axon_infralinter` runs the `axon` command."""

import sys

from axon_infralinter.cli import main

sys.exit(main())
