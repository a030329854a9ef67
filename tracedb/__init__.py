"""tracedb: a SQL warehouse for numerical parity traces.

Heavy modules (SQLAlchemy, pandas) load on first use so that ``tracedb --help``
starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "connect", "Warehouse", "TracedbError"]


def __getattr__(name: str):
    if name in ("connect", "Warehouse"):
        from . import api

        return getattr(api, name)
    if name == "TracedbError":
        from .errors import TracedbError

        return TracedbError
    raise AttributeError(name)
