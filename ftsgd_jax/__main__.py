"""``python -m ftsgd_jax``: the ``ftsgd`` command line, for environments where the package is
importable but its console script is not installed (a source checkout on ``PYTHONPATH``)."""

import sys

from ftsgd_jax.cli import main

sys.exit(main())
