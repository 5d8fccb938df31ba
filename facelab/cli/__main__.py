"""``python -m facelab.cli`` (what torchrun runs: ``torchrun ... -m facelab.cli train ...``)."""

import sys

from facelab.cli import main

sys.exit(main())
