"""QR codes for authenticator apps, drawn on the page itself.

A new person's second-factor secret is shown once, to the administrator who
made it. A QR code of its ``otpauth://`` link lets the person scan it rather
than type 32 letters. The code is an inline SVG in the page's own HTML: no
image is fetched (from here or anywhere else) that a cache, a proxy's log or
another site could keep, and the page itself is sent with ``no-store`` like
every page (see :mod:`gcx.web.site`).
"""

from __future__ import annotations

import segno
from markupsafe import Markup

# Medium error correction: readable from a screen even slightly blurred, and
# small enough for an otpauth link at a size a phone's camera reads easily.
_ERROR_CORRECTION = "m"


def qr_svg(text: str, label: str) -> Markup:
    """An inline ``<svg>`` of ``text`` as a QR code, named ``label`` for screen readers."""
    code = segno.make(text, error=_ERROR_CORRECTION)
    svg = code.svg_inline(scale=5, border=4, dark="#0b0c0c", light="#ffffff", svgclass="gcx-qr")
    # segno writes a bare <svg>; say what it is to assistive technology (WCAG 1.1.1).
    # The label is escaped into the attribute; the rest is segno's own markup.
    named = f'<svg role="img" aria-label="{Markup.escape(label)}" '
    return Markup(svg.replace("<svg ", named, 1))  # noqa: S704
