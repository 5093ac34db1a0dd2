"""Child processes the tests interrupt."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for a child a test sends SIGINT: Ctrl-C's default disposition, whatever was inherited.

    A command started in the background by a non-interactive shell (``cmd &``, as CI scripts and ``nohup``
    wrappers do) inherits SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler, so the
    child would run on through the test's Ctrl-C and exit 0.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
