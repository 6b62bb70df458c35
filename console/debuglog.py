"""Where the libraries' log records go: never raw onto the user's terminal.

paramiko logs from its transport thread (`paramiko.transport`: a host that closes the connection before
its banner logs the error with a 21-line traceback), httpx and others log too, and with no handler
configured Python's "last resort" prints every WARNING and above to stderr, in the middle of a table or
over the dashboard. The console says what went wrong itself (the node's reason in its table); the
records go to a debug log instead:

- always: `console.log` in the state directory (`$ASCEND_CONSOLE_STATE`, else
  `$XDG_STATE_HOME/ascend-console`), WARNING and above, rotated at 1 MB with two old files kept,
  created only when something is logged;
- with `--debug`: every record (DEBUG and above) there and, for a headless command, on stderr too. The
  dashboard never logs on stderr: the terminal is its screen.

Python warnings (`warnings.warn`, deprecations) are log records here too.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from console.store import state_dir

LOG_NAME = "console.log"
MAX_BYTES = 1 << 20
BACKUPS = 2
FORMAT = "%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s: %(message)s"


class _ConsoleHandler(logging.Handler):
    """Marks the handlers configured here, so that configuring again replaces them."""


class _FileHandler(logging.handlers.RotatingFileHandler, _ConsoleHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        """A log that cannot be written (disk full, the directory gone) loses the record: logging's
        default would print a traceback of its own onto the terminal."""


class _StderrHandler(logging.StreamHandler, _ConsoleHandler):  # type: ignore[type-arg]
    pass


class _NoLog(logging.NullHandler, _ConsoleHandler):
    pass


def log_path() -> Path:
    return state_dir() / LOG_NAME


def configure_logging(*, debug: bool = False, stderr: bool = False) -> Path | None:
    """Send every log record to the debug log (and, with `debug` and `stderr`, to stderr), replacing
    what an earlier call set up. Returns the log file, or None when its directory cannot be made (then
    the records are dropped, still never printed raw)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ConsoleHandler)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.captureWarnings(True)
    formatter = logging.Formatter(FORMAT)
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        root.addHandler(_NoLog())
    else:
        kept = _FileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
        kept.setFormatter(formatter)
        root.addHandler(kept)
    if debug and stderr:
        printed = _StderrHandler(sys.stderr)
        printed.setFormatter(formatter)
        root.addHandler(printed)
    return path if path.parent.is_dir() else None
