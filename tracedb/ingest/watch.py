"""``tracedb ingest --watch``: load report trees again whenever files under them
change, once they have been quiet for a moment.

The file-system events come from watchdog (inotify, FSEvents, ReadDirectoryChangesW,
or polling where none of those is there). Nothing here reads a trace file or the
database: each round calls ``load`` with the watched trees, and ``load`` is the
ordinary ingest, one idempotent transaction per bundle, which loads only what is new
or changed. The debounce waits until no event has come for ``debounce`` seconds, so a
bundle that is still being written is not loaded half; a file changed again after its
round loads as a new version in the next one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import TracedbError

#: Seconds without a file-system event before the trees are loaded again.
DEFAULT_DEBOUNCE = 2.0


#: Events that change no content: reading a file (the ingest's own reads among them).
_NO_CHANGE = frozenset({"opened", "closed_no_write", "attrib"})


def watch(roots: list[str], load: Callable[[list[str]], object], *,
          debounce: float = DEFAULT_DEBOUNCE, ignore: list[Path] = (),
          stop: threading.Event | None = None, rounds: int | None = None) -> int:
    """Load ``roots`` now, then again after each burst of changes under them, until
    ``stop`` is set (or KeyboardInterrupt), or ``rounds`` loads after the first have
    run. Returns how many loads ran. Changes to the files in ``ignore`` (a warehouse
    file inside a watched tree, which each load writes) start no load. A root that
    is not a directory is an error."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        raise TracedbError("ingest --watch needs the watchdog package "
                           "(pip install 'tracedb[watch]')") from None
    missing = [r for r in roots if not Path(r).is_dir()]
    if missing:
        raise TracedbError(f"ingest --watch: not a directory: {missing[0]}")
    if not debounce > 0:
        raise TracedbError(f"--debounce must be a positive number of seconds, not {debounce}")
    stop = stop or threading.Event()
    changed = threading.Event()
    last = [time.monotonic()]
    ignored = {str(Path(p).resolve()) for p in ignore}

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            if event.event_type in _NO_CHANGE or (
                    # a directory is 'modified' by each change of an entry, which
                    # has an event of its own (the warehouse's, ignored, among them)
                    event.is_directory and event.event_type == "modified") or (
                    str(Path(str(event.src_path)).resolve()) in ignored
                    and not getattr(event, "dest_path", "")):
                return
            last[0] = time.monotonic()
            changed.set()

    observer = Observer()
    for root in roots:
        observer.schedule(Handler(), root, recursive=True)
    observer.start()
    loads = 0
    try:
        load(roots)  # what is there already
        loads += 1
        while not stop.is_set() and (rounds is None or loads <= rounds):
            if not changed.wait(timeout=0.2):
                continue
            quiet = time.monotonic() - last[0]
            if quiet < debounce:
                stop.wait(debounce - quiet)
                continue
            changed.clear()
            load(roots)
            loads += 1
    finally:
        observer.stop()
        observer.join()
    return loads
