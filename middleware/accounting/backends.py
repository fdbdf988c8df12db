"""Opening a ledger by URL scheme.

The built-in backends register themselves when imported here (each imports its
database driver lazily); a third-party backend registers with
:func:`~middleware.accounting.ledger.register_backend` before a ledger is opened.
"""

from __future__ import annotations

from middleware.accounting import postgres, sqlite  # noqa: F401  (registers the built-in backends)
from middleware.accounting.ledger import BACKENDS, Ledger
from middleware.errors import InvalidArgument
from middleware.settings import Settings


def open_ledger(settings: Settings, url: str | None = None) -> Ledger:
    """The ledger named by ``url`` (default ``settings.ledger_url``)."""
    url = settings.ledger_url if url is None else url
    scheme = "sqlite" if not url else ("none" if url == "none" else url.split(":", 1)[0].lower())
    factory = BACKENDS.get(scheme)
    if factory is None or (url and url != "none" and ":" not in url):
        raise InvalidArgument(f"ledger_url {url!r}: unknown scheme; known: {sorted(BACKENDS)}")
    return factory(url, settings)
