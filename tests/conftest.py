"""Shared fixtures: warehouse URLs on both backends, the corpus, small trees."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "nanoBragg"
PG_URL = os.environ.get("TRACEDB_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    """None when the PostgreSQL server answers, else the reason it does not."""
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
    except ImportError as exc:
        return f"psycopg not installed ({exc})"
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"no PostgreSQL server at {PG_URL} ({type(exc).__name__})"
    return None


_PG_REASON: list[str | None] = []


def pg_reason() -> str | None:
    if not _PG_REASON:
        _PG_REASON.append(_pg_available())
    return _PG_REASON[0]


def pg_schema_url():
    """Context manager: a PostgreSQL URL whose search_path is a fresh schema."""
    import contextlib

    @contextlib.contextmanager
    def manager():
        reason = pg_reason()
        if reason:
            if os.environ.get("CI"):
                pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
            pytest.skip(reason)
        from sqlalchemy import create_engine, text

        schema = f"tdb_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        try:
            yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    return manager()


@pytest.fixture(autouse=True, scope="session")
def _no_inherited_terminal_width():
    """GNU readline, which pytest loads, writes COLUMNS=80 and LINES into the process's C
    environment (not ``os.environ``), so every CLI the tests start would draw its tables
    for an 80-column terminal. The CLI's output is tested as a pipe shows it; a test
    that wants a terminal width gives COLUMNS itself."""
    for var in ("COLUMNS", "LINES"):
        os.environ.pop(var, None)
        os.unsetenv(var)


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with pg_schema_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A fresh, empty warehouse URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'wh.sqlite').as_posix()}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{(tmp_path / 'wh.sqlite').as_posix()}"


@pytest.fixture
def corpus():
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at ../shared/corpus/nanoBragg (expected {CORPUS})")
    return CORPUS


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


C_TRACE = """\
nanoBragg nanocrystal diffraction simulator - test
TRACE_C:detector_convention=MOSFLM
TRACE_C:beam_center_m=X:0.000102425 Y:0.000102425 pixel_mm:0.05
TRACE_C:Rx=[1 0 0; 0 1 -0; 0 0 1]
TRACE_C: pixel_pos_meters 0.5 0.01 -0.02
TRACE_C: I_pixel_final 1.5e-13
"""

PY_TRACE = """\
TRACE_PY: detector_convention MOSFLM
TRACE_PY: beam_center_m X:1.024250000000000e-01 Y:1.024250000000000e-01 pixel_mm:0.05
TRACE_PY: Rx [1 0 0; 0 1 0; 0 0 1]
TRACE_PY: pixel_pos_meters 5.000000000000000e-01 1.000000000000000e-02 -2.000000000000000e-02
TRACE_PY: I_pixel_final 1.500000000000000e-13
"""


@pytest.fixture
def tree(tmp_path):
    """A two-bundle reports tree: C at one stamp, PyTorch at another, two pixels."""
    root = tmp_path / "reports"
    c = root / "init" / "phase_x" / "20250101T000000Z"
    p = root / "init" / "phase_x" / "20250101T010000Z"
    for s, f in ((1, 2), (3, 4)):
        write(c / "c_traces" / f"pixel_{s}_{f}.log", C_TRACE)
        write(p / "py_traces" / f"pixel_{s}_{f}.log", PY_TRACE)
        write(p / "py_traces" / f"pixel_{s}_{f}_metadata.json",
              f'{{"pixel_slow": {s}, "pixel_fast": {f}, "timestamp_utc": "20250101T010203Z",'
              ' "device": "cpu", "dtype": "torch.float64"}')
    write(c / "commands.txt", "./nanoBragg -trace_pixel 1 2\n")
    write(c / "env" / "trace_env.json", '{"git_sha": "abc123", "git_branch": "main"}')
    write(p / "commands.txt", "python trace.py --pixel 1 2\n")
    write(p / "env.json", '{"git_sha": "def456"}')
    write(p / "summary.md", "# notes\nTRACE_PY: not_a_tap 1\n")
    return root
