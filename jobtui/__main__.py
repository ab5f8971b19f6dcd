"""``python -m jobtui``: the same as the ``jobtui`` command."""

import sys

from jobtui.console_script import main

sys.exit(main())
