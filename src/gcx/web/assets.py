"""Where GOV.UK Frontend's built files are on this machine.

GOV.UK Frontend comes from the npm registry (``package.json`` at the root of
the repository; ``scripts/_venv.sh`` runs ``npm ci``) and is never committed.
``GCX_GOVUK_FRONTEND`` names its ``dist/govuk`` folder where it is installed
elsewhere. Without it the pages still work, unstyled, and a warning says why.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

_RELATIVE = Path("node_modules") / "govuk-frontend" / "dist" / "govuk"


def _candidates() -> list[Path]:
    named = os.environ.get("GCX_GOVUK_FRONTEND")
    if named:
        return [Path(named)]
    repository = Path(__file__).resolve().parents[3]
    return [repository / _RELATIVE, Path.cwd() / _RELATIVE]


@cache
def govuk_frontend_dir() -> Path | None:
    for candidate in _candidates():
        if (candidate / "govuk-frontend.min.css").is_file():
            return candidate
    log.warning(
        "GOV.UK Frontend is not installed (run 'npm ci' at the repository root, or set "
        "GCX_GOVUK_FRONTEND); the web pages will be unstyled"
    )
    return None
