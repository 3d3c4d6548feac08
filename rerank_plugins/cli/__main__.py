"""``python -m rerank_plugins.cli``: the same as the ``rerank-plugins`` command."""

import sys

from rerank_plugins.cli import main

sys.exit(main())
