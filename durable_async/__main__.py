"""``python -m durable_async``: the ``durable-async`` command."""

import sys

from durable_async.cli import main

sys.exit(main())
