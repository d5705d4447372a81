"""`python -m vtr.cli` (what torchrun launches): the same as the `vtr` command."""
import sys

from . import main

sys.exit(main())
