"""The row layout of the tables the loader writes, in column order.

The migrations (``migrations/versions``) make the tables; this module names the
columns the loader fills, in the order its rows are built (the Python row
builders in ``ingest/rows.py`` and the C accelerator bind by position). A test
(tests/test_schema.py) holds these tuples to the migrated tables, and the C
module checks its parameter counts against them at import.
"""

from __future__ import annotations

import hashlib
import struct

TAP_COLS = ("id", "run_id", "seq", "line_no", "channel", "name", "loop_key", "occurrence",
            "unit", "shape", "n_components", "value_text", "key_name", "key_occurrence",
            "key_id", "digest")
#: A value row is (run_id, key_id, idx) followed by a component's fields
#: (``ingest.parse.Component``: label, num, text, kind, digits, half_ulp).
VALUE_KEY = ("run_id", "key_id", "idx")
VALUE_COLS = (*VALUE_KEY, "label", "num", "text", "kind", "digits", "half_ulp")
RUN_COLS = ("id", "source_file_id", "bundle_id", "segment", "side", "pixel_id", "pixel_source",
            "stamp", "path_stamp", "meta_stamp", "meta_time", "metadata_json", "tap_count",
            "first_line", "last_line", "shape_sig", "tap_digests")
FILE_COLS = ("id", "bundle_id", "path", "abs_path", "sha256", "version", "size", "line_count",
             "trace_lines", "parsed_lines", "quarantined_lines", "parser", "encoding",
             "metadata_path", "command_id", "loaded_at", "continuation_lines", "json_values",
             "json_quarantined")
BLOB_COLS = ("sha256", "size", "compression", "content")
QUARANTINE_COLS = ("id", "source_file_id", "line_no", "reason", "text", "json_pointer")
#: Where a tap of a JSON trace is written in its file (its tap row's line_no is 0).
TAP_POINTER_COLS = ("tap_id", "json_pointer")
PAIRING_KEY_COLS = ("channel", "key_name", "loop_key", "key_occurrence")
#: What a comparison step copies from the status views into tap_result (the unit
#: hints are added afterwards).
TAP_RESULT_COLS = ("set_id", "comparison_id", "ref_tap_id", "cand_tap_id", "channel",
                   "key_name", "loop_key", "occurrence", "ref_seq", "cand_seq", "ref_line",
                   "cand_line", "ref_name", "cand_name", "unit", "ref_n", "cand_n",
                   "ref_value", "cand_value", "n_diverged", "n_print_precision",
                   "max_abs_delta", "max_rel_delta", "min_ratio", "max_ratio", "n_ratio",
                   "status", "accepted_reason")

#: Tables in the order their rows are written (foreign keys first), with their
#: columns and whether a row already present is skipped (content-addressed blobs).
WRITE_ORDER = (("source_blob", BLOB_COLS, True), ("source_file", FILE_COLS, False),
               ("run", RUN_COLS, False), ("tap", TAP_COLS, False), ("value", VALUE_COLS, False),
               ("quarantine", QUARANTINE_COLS, False), ("tap_pointer", TAP_POINTER_COLS, False))

#: The largest number the schema's integer columns hold on every backend (a
#: PostgreSQL ``integer``): pixel numbers, line numbers, a tap's order in its run.
INT_MAX = (1 << 31) - 1
#: A tap's id is its run id shifted by TAP_BITS plus its order in the run (from 1),
#: so the writer builds tap rows without a round trip to the database. 31 bits hold
#: every order ``tap.seq`` can hold, and the ids stay within 64 bits for run ids
#: below 2**32. (Warehouses loaded before used 20 bits; their tap ids stay as they
#: are, and every later run's ids lie above them.)
TAP_BITS = 31
#: The most taps one run holds, and lines one file (the loader names a file that
#: holds more and loads the rest of its bundle).
MAX_TAPS = INT_MAX
MAX_LINES = INT_MAX

#: The private database a stager writes a group of files into (SQLite): the tap and
#: value tables as above, and the pairing keys it did not know (provisional ids).
STAGE_DDL = (
    "CREATE TABLE tap (id INTEGER PRIMARY KEY, "
    f"{', '.join(c for c in TAP_COLS if c != 'id')})",
    f"CREATE TABLE value ({', '.join(VALUE_COLS)})",
    f"CREATE TABLE new_key (lid INTEGER PRIMARY KEY, {', '.join(PAIRING_KEY_COLS)}, "
    "gid INTEGER)",
)
STAGE_SQL = (
    f"INSERT INTO tap VALUES ({', '.join('?' * len(TAP_COLS))})",
    f"INSERT INTO value VALUES ({', '.join('?' * len(VALUE_COLS))})",
    f"INSERT INTO new_key (lid, {', '.join(PAIRING_KEY_COLS)}) "
    f"VALUES ({', '.join('?' * (1 + len(PAIRING_KEY_COLS)))})",
)


def shape_signature(keys) -> str:
    """A run's shape: sha256 of its sorted (pairing key id, component count) pairs.

    Two comparisons whose runs have the same shapes have the same taps missing on
    either side and the same length differences, so the comparison works that out
    once per pair of shapes (queries/steps/compare_flag_shapes.sql).
    """
    text = "\n".join(f"{k}:{n}" for k, n in sorted(keys))
    return hashlib.sha256(text.encode()).hexdigest()


def digest_list(digests) -> bytes:
    """A run's ``tap_digests``: its taps' digests in key id order (``digests``, None
    for a tap without one), 8 bytes each, big-endian and signed, 0 for none.

    Two runs of one shape (``shape_signature``) hold the same keys in the same order,
    so the comparison pairs their taps by position in these lists, without a look-up
    per tap pair (``compare.engine``); a 0 never settles a pair, so a tap whose
    digest is 0 only has its values read.
    """
    return struct.pack(f">{len(digests)}q", *[0 if d is None else d for d in digests])


#: The tap digest's contract between the loader (``ingest.rows.tap_digest``, which
#: computes it) and the comparison (``queries/steps/compare_flag*.sql``, which skips
#: the values of a tap pair whose digests settle it): numbers digested are 0 and the
#: magnitudes within this band (the status rules' band of IEEE arithmetic) ...
DIGEST_BAND = (1e-150, 1e150)
#: ... to 41 bits of mantissa (from revision 0018; 44 before), so within 2**-41 of
#: each other; 2**-40 (9.1e-13, below the default rtol of 1e-12), the smallest rtol
#: for which equal digests mean a plain match, leaves a factor of two for the
#: rounding of ``atol + rtol*|ref|``.
DIGEST_RTOL = 2.0 ** -40


def digests_settle(rtol: float, atol: float) -> bool:
    """Whether equal digests settle a tap pair (a plain match) under this tolerance:
    an rtol of DIGEST_RTOL up to the band's top, an atol of 0 or within the band.
    Decided once per comparison set, so the comparison does not test the tolerance
    at every tap pair."""
    return DIGEST_RTOL <= rtol <= DIGEST_BAND[1] and (
        atol == 0 or DIGEST_BAND[0] <= atol <= DIGEST_BAND[1])


#: When a pair's digests settle it (a plain match, its values not read): the SQL of
#: compare_flag's steps, for ``r`` and ``k`` (reference and candidate tap), with
#: ``:digests`` bound to :func:`digests_settle` of the set's tolerance (1 or 0).
DIGEST_SETTLES = ("(CAST(:digests AS INTEGER) = 1 AND r.digest = k.digest"
                  " AND r.n_components = k.n_components)")
