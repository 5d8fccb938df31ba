"""``python -m facelab``: the same CLI as the ``facelab`` command (for machines where it is not installed)."""

import sys

from facelab.cli import main

sys.exit(main())
