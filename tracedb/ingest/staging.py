"""Groups of files staged where they are parsed (a worker process when the ingest is
large), so the writer spends no Python time per row.

SQLite: the tap and value rows of a group go into a private in-memory SQLite
database, shipped as that database's image (one bytes object: no per-row
pickling) and copied into the warehouse by one INSERT ... SELECT per table inside
the bundle's transaction. PostgreSQL: the rows are written as COPY text with
final ids, which the writer streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import postgres
from ..store.layout import STAGE_DDL, STAGE_SQL, TAP_BITS
from . import rows
from .discover import Note
from .files import Prepared, prepare_file
from .runs import (
    RunDraft,
    Template,
    UnitRules,
    alias_lookup,
    run_template,
    summarise,
    unit_lookup,
)


class Turns:
    """Job order across worker processes: the PostgreSQL stager of job k registers its
    new pairing keys and draws its run ids after that of job k - 1 did, so that ids
    follow the files' order as they do on SQLite (and in one process), whichever
    worker finishes parsing first."""

    #: Seconds a job waits for its turn before it draws ids anyway (ids stay unique;
    #: only their order would differ). Jobs are handed out in turn order, so an
    #: earlier one is always running or done; this only guards against the unforeseen.
    WAIT = 120.0

    def __init__(self, mp_context) -> None:
        self.next = mp_context.Value("q", 0, lock=False)
        self.cond = mp_context.Condition()

    def wait(self, turn: int) -> bool:
        """Wait until every earlier job has had its turn; False after WAIT s."""
        with self.cond:
            return self.cond.wait_for(lambda: self.next.value >= turn, timeout=self.WAIT)

    def done(self, turn: int) -> None:
        """Let later jobs go (again harmless; a job that failed never waits)."""
        with self.cond:
            self.next.value = max(self.next.value, turn + 1)
            self.cond.notify_all()


#: This worker process's Turns (None in the writing process: it runs jobs in order).
_TURNS: Turns | None = None


def init_worker(turns: Turns | None = None) -> None:
    """In a worker process (see workers.WindowedPool): the ingest's Turns."""
    global _TURNS
    _TURNS = turns


#: Files per staged group (and bytes): small enough to bound memory, large enough
#: that a group's fixed costs (a process round trip, a stage database) are noise.
STAGE_FILES = 200
STAGE_BYTES = 8 << 20
@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stager needs from the writer: unit rules, aliases and known key ids;
    on PostgreSQL also the warehouse URL (``copy_url``), see :func:`stage_files`."""

    units: UnitRules
    aliases: tuple[tuple[str, str, str, str], ...]  # channel, name, canonical, kind
    key_ids: dict[tuple[str, str, str, int], int]
    copy_url: str | None = field(default=None, repr=False)  # may hold a password
    turn: int = 0  # the job's place in the ingest (see Turns)
    stream: bool = False  # the job's one file is loaded in chunks by the writer


@dataclass(slots=True)
class Staged:
    """A group of files read, parsed and staged.

    SQLite: ``image`` holds the rows with local run ids (0, 1, ...) and provisional
    ids for ``new_keys``. PostgreSQL: ``copy`` holds them as COPY text with the run
    ids ``run_ids`` and keys already registered (``key_ids`` has the new ones).
    """

    preps: list[Prepared]
    runs: int  # staged runs, in file then segment order
    image: bytes | None  # serialized stage database (None when nothing was staged)
    new_keys: list[tuple[int, tuple[str, str, str, int]]]  # (provisional id < 0, key)
    run_ids: list[int] | None = None
    copy: tuple[bytes, bytes] | None = None  # COPY text of the tap and value rows
    key_ids: dict[tuple[str, str, str, int], int] = field(default_factory=dict)
    stream: tuple | None = None  # (trace file, known sha256s): for the writer to load


def stage_files(job: tuple[list[tuple], StageContext]) -> Staged:
    """Read, parse and stage a group of files (runs in worker processes).

    SQLite (no ``copy_url``): the rows go into a private in-memory database, with
    local run ids; pairing keys the writer did not know when the job was made get
    provisional negative ids, which the writer registers and rewrites before
    copying. A run with such a key has no shape signature yet (the writer computes
    it). PostgreSQL: the worker registers new keys and draws run ids on its own
    autocommit connection (neither is rolled back with a failed bundle: an unused
    key or id is harmless), then writes the rows as COPY text for the writer to
    stream.
    """
    files, ctx = job
    if ctx.stream:  # a large file: the writer loads it in chunks, in this job's place
        if ctx.copy_url is not None and _TURNS is not None:
            _TURNS.done(ctx.turn)
        return Staged([], 0, None, [], stream=files[0])
    if ctx.copy_url is not None:
        return _stage_copy(files, ctx)
    unit_of = unit_lookup(ctx.units)
    key_of = alias_lookup(ctx.aliases)
    known = ctx.key_ids
    new: dict[tuple[str, str, str, int], int] = {}

    def key_id_of(key: tuple[str, str, str, int]) -> int:
        kid = known.get(key)
        if kid is None:
            kid = new.get(key)
            if kid is None:
                kid = new[key] = -(len(new) + 1)
        return kid

    preps: list[Prepared] = []
    templates: dict = {}
    stager = None
    local = 0
    for item in files:
        prep = prepare_file(item)
        preps.append(prep)
        if prep.error or prep.unchanged:
            continue
        for draft in prep.drafts:
            template = run_template(draft, unit_of, key_of, key_id_of, templates)
            if stager is None:
                stager = rows.Stager(STAGE_DDL, *STAGE_SQL)
            _stage_run(stager, local, draft, template)
            local += 1
    image = None
    if stager is not None:
        stager.new_keys([(kid, *key) for key, kid in new.items()])
        image = stager.image()
    return Staged(preps, local, image, [(kid, key) for key, kid in new.items()])


def _stage_run(stager, run_id: int, draft: RunDraft, template: Template) -> None:
    """Stage one run's taps and values; keep its summary and drop its taps."""
    counts, digests = stager.run(run_id, run_id << TAP_BITS, draft.taps, template.static,
                                 template.order)
    summarise(draft, template, counts, digests)
    draft.taps = []


def _stage_copy(files: list[tuple], ctx: StageContext) -> Staged:
    """stage_files for PostgreSQL: final ids, rows as COPY text."""
    turn = ctx.turn if _TURNS is not None else None
    try:
        return _stage_copy_in_turn(files, ctx, turn)
    finally:  # whatever happened, later jobs need not wait for this one any more
        if turn is not None:
            _TURNS.done(turn)  # type: ignore[union-attr]


def _stage_copy_in_turn(files: list[tuple], ctx: StageContext, turn: int | None) -> Staged:
    unit_of = unit_lookup(ctx.units)
    key_of = alias_lookup(ctx.aliases)
    known = dict(ctx.key_ids)
    new: dict[tuple[str, str, str, int], None] = {}  # in order of first use

    def key_id_of(key: tuple[str, str, str, int]) -> int:
        kid = known.get(key)
        if kid is None:
            new[key] = None
            return -1
        return kid

    preps = [prepare_file(item) for item in files]
    drafts = [d for p in preps if not (p.error or p.unchanged) for d in p.drafts]
    if not drafts:
        return Staged(preps, 0, None, [])
    templates: dict = {}
    for draft in drafts:  # which keys are new (their templates are then made again)
        run_template(draft, unit_of, key_of, key_id_of, templates)
    cur = postgres.stager_cursor(ctx.copy_url)
    if turn is not None and not _TURNS.wait(turn):  # type: ignore[union-attr]
        first = next(p for p in preps if not (p.error or p.unchanged))
        first.notes.append(Note(first.tf.display, f"waited {Turns.WAIT:.0f} s for an "
                                "earlier group of files; run ids of this group do not "
                                "follow the files' order", level="warning"))
    registered = postgres.pg_register_tap_keys(cur, list(new))  # keys and run ids in files' order
    known.update(registered)
    run_ids = postgres.pg_nextvals(cur, postgres.pg_sequence(cur, "run"), len(drafts))
    if turn is not None:  # staging the rows needs no turn
        _TURNS.done(turn)  # type: ignore[union-attr]
    if new:  # templates with a new key hold a placeholder id: make them again
        templates = {}
    stager = rows.Stager(None)
    for run_id, draft in zip(run_ids, drafts, strict=True):
        _stage_run(stager, run_id, draft,
                   run_template(draft, unit_of, key_of, known.__getitem__, templates))
    return Staged(preps, len(drafts), None, [], run_ids, stager.copy_text(), registered)
