"""PostgreSQL ledger, for several replicas writing one ledger (psycopg 3)."""

from __future__ import annotations

from middleware.accounting.ledger import SqlLedger, register_backend
from middleware.errors import Unavailable
from middleware.settings import Settings


class PostgresLedger(SqlLedger):
    placeholder = "%s"
    id_column = "id BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise Unavailable("a postgresql:// ledger_url needs psycopg: pip install 'ragpress[postgres]'") from exc
        try:
            conn = psycopg.connect(url, connect_timeout=int(max(1, connect_timeout)))
        except psycopg.Error as exc:
            # The URL may hold a password: name the host only.
            raise Unavailable(f"cannot connect to the PostgreSQL ledger: {exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        super().__init__(conn)

    def bucket_expr(self, seconds: int) -> str:
        return f"FLOOR(ts / {int(seconds)}) * {int(seconds)}"


@register_backend("postgresql", "postgres")
def _open(url: str, settings: Settings) -> PostgresLedger:
    return PostgresLedger(url)
