"""Yes/no environment variables, read one way.

facegraph's switches (``FACEGRAPH_NO_CAMERA``, ``FACEGRAPH_WORKER_AFFINITY``,
``FACEGRAPH_CHECK_SCHEDULER``) used to be read three ways: ``"0"`` meant off for one,
anything but ``""``/``"0"`` meant on for the others. So ``FACEGRAPH_NO_CAMERA=false`` skipped
the camera, and ``FACEGRAPH_WORKER_AFFINITY=off`` left the affinity on. :func:`env_flag`
accepts the usual spellings and, for anything else, says so on one line (naming the
variable and its value) and keeps the default: a typo in a tuning switch should neither
stop a run nor pass unnoticed.
"""

from __future__ import annotations

import logging
import os

__all__ = ["env_flag"]

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})

_log = logging.getLogger("facegraph")


def env_flag(name: str, default: bool) -> bool:
    """The yes/no value of environment variable ``name``; ``default`` when unset or empty.

    ``1``/``true``/``yes``/``on`` and ``0``/``false``/``no``/``off`` (any case, surrounding
    blanks ignored). Any other value logs a one-line warning and gives ``default``.
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    _log.warning(
        "%s=%r is not a yes/no value (1/0, true/false, yes/no, on/off); using the default (%s)",
        name,
        raw,
        "on" if default else "off",
    )
    return default
