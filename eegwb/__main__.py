"""`python -m eegwb ...` (also the entry point under `torchrun`)."""

import sys

from eegwb.cli import main

sys.exit(main())
