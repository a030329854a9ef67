"""The status rules of the comparison views, shared by the migrations that define
those views (0003; 0005 when it re-keys them; 0008 when it pairs labelled
components by label), so the rules are written once.

This text is part of the schema's history: changing it changes what those
migrations create. A change of the rules is a new migration that carries its own
text (and may import what stays the same from here).

The views' text is the same on SQLite and PostgreSQL (no GREATEST, no FULL JOIN,
no string aggregation). ``rv`` / ``cv`` are a reference and a candidate value row,
``r`` / ``k`` their taps, ``c`` the comparison and ``s`` its set.
"""

_BOTH = "rv.kind = 'num' AND cv.kind = 'num'"
_DELTA = "ABS(rv.num - cv.num)"
_MAXABS = "(CASE WHEN ABS(rv.num) >= ABS(cv.num) THEN ABS(rv.num) ELSE ABS(cv.num) END)"
_HALF = "(CASE WHEN rv.half_ulp >= cv.half_ulp THEN rv.half_ulp ELSE cv.half_ulp END)"

ABS_DELTA = f"(CASE WHEN {_BOTH} THEN {_DELTA} END)"
REL_DELTA = f"(CASE WHEN {_BOTH} AND (rv.num <> 0 OR cv.num <> 0) THEN {_DELTA} / {_MAXABS} END)"
RATIO = f"(CASE WHEN {_BOTH} AND cv.num <> 0 THEN rv.num / cv.num END)"
# |a-b| <= atol + rtol*max(|a|,|b|); -0 == 0 numerically; nan, inf, -inf and
# strings compare by kind and text; a component missing on one side (vectors of
# different length) diverges; outside tolerance but within half a unit in the
# last written digit of the less precise side is 'print_precision'.
def _status(within: str, within_half: str) -> str:
    """The status rules, with the tests of two numbers: within tolerance, within half
    a unit in the last written digit."""
    return f"""(CASE
  WHEN rv.kind IS NULL OR cv.kind IS NULL THEN 'diverged'
  WHEN rv.kind = 'text' OR cv.kind = 'text' THEN
       CASE WHEN rv.kind = cv.kind AND rv.text = cv.text THEN 'match' ELSE 'diverged' END
  WHEN rv.kind <> 'num' OR cv.kind <> 'num' THEN
       CASE WHEN rv.kind = cv.kind THEN 'match' ELSE 'diverged' END
  WHEN {within} THEN 'match'
  WHEN {within_half} THEN 'print_precision'
  ELSE 'diverged' END)"""


STATUS = _status(f"{_DELTA} <= s.atol + s.rtol * {_MAXABS}", f"{_DELTA} <= {_HALF}")

PAIR_COLS = """c.set_id AS set_id, c.id AS comparison_id, r.id AS ref_tap_id, k.id AS cand_tap_id,
       r.channel AS channel, r.key_name AS key_name, r.loop_key AS loop_key,
       r.key_occurrence AS occurrence, r.seq AS ref_seq, k.seq AS cand_seq,
       r.line_no AS ref_line, k.line_no AS cand_line, r.name AS ref_name, k.name AS cand_name,
       COALESCE(r.unit, k.unit) AS unit, r.n_components AS ref_n, k.n_components AS cand_n,
       r.value_text AS ref_value, k.value_text AS cand_value"""

CAND_ONLY_COLS = """c.set_id, c.id, NULL, k.id, k.channel, k.key_name, k.loop_key,
       k.key_occurrence, NULL, k.seq, NULL, k.line_no, NULL, k.name, k.unit, NULL,
       k.n_components, NULL, k.value_text"""

ACCEPTED_WHERE = """ad.name IN (r.key_name, r.name, k.name)
         AND (ad.channel = '*' OR ad.channel = r.channel)
         AND (ad.loop_key IS NULL OR ad.loop_key = r.loop_key)
         AND (ad.run_id IS NULL OR ad.run_id = c.ref_run_id OR ad.run_id = c.cand_run_id)"""

N_DIV = f"SUM(CASE WHEN {STATUS} = 'diverged' THEN 1 ELSE 0 END)"
N_PP = f"SUM(CASE WHEN {STATUS} = 'print_precision' THEN 1 ELSE 0 END)"
DIVERGED = f"({N_DIV} > 0 OR r.n_components <> k.n_components)"

#: The test of mismatch_value_key: a component that plainly matches (then the key
#: needs no full rules) has both numbers within atol + rtol*|ref|.
PLAIN_MATCH = "ABS(rv.num - cv.num) <= s.atol + s.rtol * ABS(rv.num)"


class Rules:
    """The arithmetic of the views: deltas, ratio, status and the plain-match test."""

    def __init__(self, abs_delta: str, rel_delta: str, ratio: str, status: str,
                 plain_match: str):
        self.abs_delta, self.rel_delta, self.ratio = abs_delta, rel_delta, ratio
        self.status, self.plain_match = status, plain_match
        self.n_div = f"SUM(CASE WHEN {status} = 'diverged' THEN 1 ELSE 0 END)"
        self.n_pp = f"SUM(CASE WHEN {status} = 'print_precision' THEN 1 ELSE 0 END)"
        self.diverged = f"({self.n_div} > 0 OR r.n_components <> k.n_components)"


#: Up to revision 0008: IEEE arithmetic as written, which PostgreSQL refuses where a
#: result over- or underflows (1 against 6.9e-310, identical 1e-320 values).
IEEE = Rules(ABS_DELTA, REL_DELTA, RATIO, STATUS, PLAIN_MATCH)

_MAX_DOUBLE = "1.7976931348623157e308"


def _in_band(x: str) -> str:
    """x is 0 or within 1e-150..1e150: products, sums and quotients of two such
    numbers (and a tolerance such as 1e-12) neither over- nor underflow."""
    return f"({x} = 0 OR ABS({x}) BETWEEN 1e-150 AND 1e150)"


def safe_rules(dialect: str) -> Rules:
    """The same rules, computed so that no step over- or underflows (revision 0009).

    Within the band (:func:`_in_band`, which holds every number of a real trace) the
    arithmetic is IEEE's, as before. Beyond it PostgreSQL computes in NUMERIC from
    the shortest text that reads back as each double (exact, no range limit); SQLite
    in IEEE doubles arranged not to overflow (it rounds where PostgreSQL refuses).
    A difference beyond the largest double is no number (NULL), and a ratio is
    computed only within the band (a unit factor is never beyond it)."""
    a, b = "rv.num", "cv.num"
    values_in_band = f"({_in_band(a)} AND {_in_band(b)})"
    all_in_band = f"({values_in_band} AND {_in_band('s.rtol')} AND {_in_band('s.atol')})"
    if dialect == "postgresql":
        def exact(x: str) -> str:
            return f"CAST(CAST({x} AS TEXT) AS NUMERIC)"

        ea, eb = exact(a), exact(b)
        delta = f"ABS({ea} - {eb})"
        maxabs = f"(CASE WHEN ABS({ea}) >= ABS({eb}) THEN ABS({ea}) ELSE ABS({eb}) END)"
        within = f"{delta} <= {exact('s.atol')} + {exact('s.rtol')} * {maxabs}"
        within_half = f"{delta} <= {exact(_HALF)}"
        rel = f"CAST({delta} / {maxabs} AS DOUBLE PRECISION)"
        wide_delta = (f"CASE WHEN {delta} <= {_MAX_DOUBLE} "
                      f"THEN CAST({delta} AS DOUBLE PRECISION) END")
    else:
        within = f"{_DELTA} <= s.atol + s.rtol * {_MAXABS}"
        within_half = f"{_DELTA} <= {_HALF}"
        rel = f"ABS({a} / {_MAXABS} - {b} / {_MAXABS})"
        wide_delta = f"CASE WHEN {_DELTA} <= {_MAX_DOUBLE} THEN {_DELTA} END"
    abs_delta = (f"(CASE WHEN {_BOTH} THEN CASE WHEN {values_in_band} THEN {_DELTA} "
                 f"ELSE {wide_delta} END END)")
    rel_delta = (f"(CASE WHEN {_BOTH} AND ({a} <> 0 OR {b} <> 0) THEN CASE WHEN "
                 f"{values_in_band} THEN {_DELTA} / {_MAXABS} ELSE {rel} END END)")
    ratio = f"(CASE WHEN {_BOTH} AND {b} <> 0 AND {values_in_band} THEN {a} / {b} END)"
    status = _status(f"""(CASE WHEN {all_in_band} THEN {_DELTA} <= s.atol + s.rtol * {_MAXABS}
             ELSE {within} END)""", f"""(CASE WHEN {values_in_band} THEN {_DELTA} <= {_HALF}
             ELSE {within_half} END)""")
    # beyond the band only equal numbers plainly match; the rest get the full rules
    plain_match = f"(CASE WHEN {all_in_band} THEN {PLAIN_MATCH} ELSE {a} = {b} END)"
    return Rules(abs_delta, rel_delta, ratio, status, plain_match)



def tap_status_view(view: str, joins: str, group_by: str, cand_only: str,
                    rules: Rules | None = None) -> str:
    """``CREATE VIEW`` of a tap_status view: per paired tap its worst component (or
    missing / accepted), from ``joins`` (the paired taps and their values), grouped
    by ``group_by``, and the candidate-only taps of ``cand_only``."""
    x = rules or IEEE
    return f"""
CREATE VIEW {view} AS
SELECT {PAIR_COLS},
       {x.n_div} AS n_diverged, {x.n_pp} AS n_print_precision,
       MAX({x.abs_delta}) AS max_abs_delta, MAX({x.rel_delta}) AS max_rel_delta,
       MIN(CASE WHEN {x.status} = 'diverged' AND {x.ratio} <> 0 THEN {x.ratio} END) AS min_ratio,
       MAX(CASE WHEN {x.status} = 'diverged' AND {x.ratio} <> 0 THEN {x.ratio} END) AS max_ratio,
       SUM(CASE WHEN {x.status} = 'diverged' AND {x.ratio} <> 0 THEN 1 ELSE 0 END) AS n_ratio,
       CASE
         WHEN k.id IS NULL THEN 'missing_cand'
         WHEN {x.diverged} AND EXISTS (SELECT 1 FROM accepted_divergence ad
                                     WHERE {ACCEPTED_WHERE}) THEN 'accepted'
         WHEN {x.diverged} THEN 'diverged'
         WHEN {x.n_pp} > 0 THEN 'print_precision'
         ELSE 'match'
       END AS status,
       CASE WHEN k.id IS NOT NULL AND {x.diverged}
            THEN (SELECT ad.reason FROM accepted_divergence ad WHERE {ACCEPTED_WHERE}
                  ORDER BY ad.id LIMIT 1) END AS accepted_reason
{joins}
-- in the order the indexes deliver rows, so the grouping streams instead of sorting
GROUP BY {group_by}
UNION ALL
SELECT {CAND_ONLY_COLS},
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'missing_ref', NULL
{cand_only}
"""


# --------------------------------------------------------------------------- revision 0003
# Taps paired by name (channel, key_name, loop_key, key_occurrence), values by tap id:
# what 0003 creates and what 0005's downgrade restores.

PAIRED_BY_NAME = """FROM comparison c
JOIN comparison_set s ON s.id = c.set_id
JOIN tap r ON r.run_id = c.ref_run_id
LEFT JOIN tap k ON k.run_id = c.cand_run_id AND k.channel = r.channel
     AND k.key_name = r.key_name AND k.loop_key = r.loop_key
     AND k.key_occurrence = r.key_occurrence"""

CAND_ONLY_BY_NAME = """FROM comparison c
JOIN tap k ON k.run_id = c.cand_run_id
WHERE NOT EXISTS (SELECT 1 FROM tap r WHERE r.run_id = c.ref_run_id
                  AND r.channel = k.channel AND r.key_name = k.key_name
                  AND r.loop_key = k.loop_key AND r.key_occurrence = k.key_occurrence)"""


def tap_pair_view(paired: str, cand_only: str) -> str:
    """``CREATE VIEW tap_pair``: the taps of the two runs of each comparison, paired,
    and those of the candidate only."""
    return f"""
CREATE VIEW tap_pair AS
SELECT {PAIR_COLS}
{paired}
UNION ALL
SELECT {CAND_ONLY_COLS}
{cand_only}
"""


def component_delta_view(joins: str, rules: Rules | None = None) -> str:
    """``CREATE VIEW component_delta``: per value component of the paired taps of
    ``joins``, its deltas, ratio and status."""
    x = rules or IEEE
    return f"""
CREATE VIEW component_delta AS
SELECT c.set_id AS set_id, c.id AS comparison_id, r.id AS ref_tap_id, k.id AS cand_tap_id,
       r.key_name AS key_name, rv.idx AS idx, rv.label AS ref_label, cv.label AS cand_label,
       rv.text AS ref_text, cv.text AS cand_text, rv.kind AS ref_kind, cv.kind AS cand_kind,
       rv.num AS ref_num, cv.num AS cand_num, rv.half_ulp AS ref_half_ulp,
       cv.half_ulp AS cand_half_ulp, s.rtol AS rtol, s.atol AS atol,
       {x.abs_delta} AS abs_delta, {x.rel_delta} AS rel_delta, {x.ratio} AS ratio,
       {x.status} AS status
{joins}
WHERE k.id IS NOT NULL
"""


def views_by_name() -> tuple[str, str, str]:
    """The three views as revision 0003 defines them."""
    return (
        tap_pair_view(PAIRED_BY_NAME, CAND_ONLY_BY_NAME),
        component_delta_view(f"""{PAIRED_BY_NAME}
JOIN value rv ON rv.tap_id = r.id
LEFT JOIN value cv ON cv.tap_id = k.id AND cv.idx = rv.idx"""),
        tap_status_view("tap_status", f"""{PAIRED_BY_NAME}
LEFT JOIN value rv ON rv.tap_id = r.id AND k.id IS NOT NULL
LEFT JOIN value cv ON cv.tap_id = k.id AND cv.idx = rv.idx""",
                        "c.set_id, c.grp, c.ordinal, c.id, r.channel, r.key_name, r.loop_key,\n"
                        "         r.key_occurrence, r.id, k.id", CAND_ONLY_BY_NAME),
    )


# --------------------------------------------------------------------------- revision 0005
# Taps paired by their pairing key's id (tap.key_id), value rows keyed by (run, key id,
# component): what 0005 creates, and 0008 with another pairing of the components.

PAIRED_BY_KEY = """FROM comparison c
JOIN comparison_set s ON s.id = c.set_id
JOIN tap r ON r.run_id = c.ref_run_id
LEFT JOIN tap k ON k.run_id = c.cand_run_id AND k.key_id = r.key_id"""

# The flagged taps are few: start from tap_flag and look their taps up (CROSS JOIN
# keeps that loop order on SQLite; other engines plan as they like).
FLAGGED = """FROM tap_flag f
JOIN comparison c ON c.id = f.comparison_id
JOIN comparison_set s ON s.id = c.set_id
CROSS JOIN tap r
LEFT JOIN tap k ON k.run_id = c.cand_run_id AND k.key_id = r.key_id"""
FLAGGED_WHERE = "WHERE r.run_id = c.ref_run_id AND r.key_id = f.key_id"

CAND_ONLY_BY_KEY = """FROM comparison c
JOIN tap k ON k.run_id = c.cand_run_id
WHERE NOT EXISTS (SELECT 1 FROM tap r WHERE r.run_id = c.ref_run_id AND r.key_id = k.key_id)"""

CAND_ONLY_FLAGGED = """FROM tap_flag f
JOIN comparison c ON c.id = f.comparison_id
CROSS JOIN tap k
WHERE k.run_id = c.cand_run_id AND k.key_id = f.key_id
  AND NOT EXISTS (SELECT 1 FROM tap r WHERE r.run_id = c.ref_run_id AND r.key_id = k.key_id)"""

KEY_GROUP_BY = "c.set_id, c.grp, c.ordinal, c.id, r.key_id, r.n_components, r.id, k.id"


#: The candidate component (its ``idx``) that a reference component ``rv`` of a paired
#: tap pairs with, in 0005: the one at the same position.
BY_POSITION = "rv.idx"

# --------------------------------------------------------------------------- revision 0008
#: 0008: the candidate component (its ``idx``) a reference component ``rv`` of a paired tap
#: pairs with: by label when both taps label their components, else by position. A
#: labelled reference component pairs with the candidate component of the same label
#: and the same rank among the components of that label (``X:1 Y:2`` against ``Y:2
#: X:1`` pairs X with X, ``a:1 a:2`` the first a with the first a). When the candidate
#: tap labels its components but none has that label and rank, the component pairs
#: with nothing (-1) and so diverges. An unlabelled component, or one against a
#: candidate tap without labels, pairs by position. The subqueries run for labelled
#: components only; the last is a scalar, not EXISTS, which PostgreSQL would hash
#: over the whole value table.
BY_LABEL = """(CASE WHEN rv.label IS NULL THEN rv.idx ELSE COALESCE(
         (SELECT MIN(x.idx) FROM value x
          WHERE x.run_id = k.run_id AND x.key_id = k.key_id AND x.label = rv.label
            AND (SELECT COUNT(*) FROM value y WHERE y.run_id = x.run_id
                   AND y.key_id = x.key_id AND y.label = x.label AND y.idx < x.idx)
              = (SELECT COUNT(*) FROM value z WHERE z.run_id = rv.run_id
                   AND z.key_id = rv.key_id AND z.label = rv.label AND z.idx < rv.idx)),
         CASE WHEN (SELECT MAX(x.label) FROM value x
                    WHERE x.run_id = k.run_id AND x.key_id = k.key_id) IS NULL
              THEN rv.idx ELSE -1 END) END)"""

#: The flag test of mismatch-only comparisons pairs components by position and also
#: flags a key with a labelled reference component whose label is not the
#: candidate's at its position. A tap labels all of its components or none (as
#: ingest reads them), so where every labelled reference component meets its label
#: at its position and the lengths agree (mismatch_tap_key checks those), BY_LABEL
#: pairs by position: the test stays exact without its subqueries. The flagged taps
#: get the full rules, which pair by label.
LABELS_DIFFER = "rv.label IS NOT NULL AND (rv.label = cv.label) IS NOT TRUE"


#: The views whose text computes with and pairs components, with mismatch_key, which
#: reads one of them; in the order they are made (0008 and 0009 make them again).
VALUE_VIEWS = ["component_delta", "tap_status", "tap_status_flagged", "mismatch_value_key",
               "mismatch_key"]


def remake_value_views(execute, made: dict[str, str]) -> None:
    """Drop :data:`VALUE_VIEWS` and create them from ``made`` (``keyed_views``'
    texts), through a migration's ``op.execute``."""
    for view in reversed(VALUE_VIEWS):
        execute(f"DROP VIEW {view}")
    for view in VALUE_VIEWS:
        execute(made[view])


def keyed_views(partner: str | None = None, labels_differ: str | None = None,
                rules: Rules | None = None) -> dict[str, str]:
    """The comparison views over key-id pairing, by name in the order they are made.
    Components pair by position (0005) or by the index expression ``partner`` (0008:
    by label); ``labels_differ`` is a further test that flags a key in
    mismatch_value_key (0008); ``rules`` the arithmetic (:data:`IEEE` up to 0008,
    :func:`safe_rules` from 0009)."""
    def cand(idx_test: str) -> str:
        return ("LEFT JOIN value cv ON cv.run_id = k.run_id AND cv.key_id = k.key_id "
                f"AND cv.idx {idx_test}")

    def values(idx_test: str) -> str:
        return f"""LEFT JOIN value rv ON rv.run_id = r.run_id AND rv.key_id = r.key_id
     AND k.id IS NOT NULL
{cand(idx_test)}"""

    whole = f"= {partner or BY_POSITION}"
    # The flagged taps are few: there PostgreSQL should probe the primary key per
    # value, but it prices the subqueries of a partner such as 0008's in a hashable
    # equality as if every row ran them, and hashes the whole value table instead.
    # The same partner as a range (BETWEEN p AND p) is no hash key, so the probe
    # stays (SQLite uses it as a range on idx). Over every tap of a set hashing is
    # the right plan: = p. component_delta is read for a few taps (a user's WHERE,
    # queries/steps/unit_suspects.sql).
    few = f"BETWEEN {partner} AND {partner}" if partner else whole
    return {
        "tap_pair": tap_pair_view(PAIRED_BY_KEY, CAND_ONLY_BY_KEY),
        "component_delta": component_delta_view(f"""{PAIRED_BY_KEY}
JOIN value rv ON rv.run_id = r.run_id AND rv.key_id = r.key_id
{cand(few)}""", rules),
        "tap_status": tap_status_view("tap_status", f"{PAIRED_BY_KEY}\n{values(whole)}",
                                      KEY_GROUP_BY, CAND_ONLY_BY_KEY, rules),
        "tap_status_flagged": tap_status_view(
            "tap_status_flagged", f"{FLAGGED}\n{values(few)}\n{FLAGGED_WHERE}", KEY_GROUP_BY,
            CAND_ONLY_FLAGGED, rules),
        "mismatch_value_key": mismatch_value_key_view(labels_differ, rules),
        "mismatch_tap_key": MISMATCH_TAP_KEY,
        "mismatch_key": MISMATCH_KEY,
    }


# Keys that need the full status rules. A component is a 'match' under those rules
# when both numbers are present and |ref - cand| <= atol + rtol*|ref| (their bound
# uses max(|ref|, |cand|)), or when both sides hold the same special value (nan,
# inf, -inf) or the same string; every other component, a tap missing on either
# side and a length difference flag the key. The second test only runs where the
# first fails. mismatch_value_key holds the first kind (one row per component),
# mismatch_tap_key the candidate taps without a reference tap of the same key and
# length; mismatch_key both (a key may come more than once).
def mismatch_value_key_view(labels_differ: str | None, rules: Rules | None = None) -> str:
    """``CREATE VIEW mismatch_value_key``; ``labels_differ`` (0008) flags a key too."""
    test = f"""({(rules or IEEE).plain_match}) IS NOT TRUE
  AND (rv.kind = cv.kind AND rv.kind <> 'num'
       AND (rv.kind <> 'text' OR rv.text = cv.text)) IS NOT TRUE"""
    if labels_differ:
        test = f"""(({test})
   OR ({labels_differ}))"""
    return f"""
CREATE VIEW mismatch_value_key AS
SELECT c.set_id AS set_id, c.id AS comparison_id, rv.key_id AS key_id
FROM comparison c
JOIN comparison_set s ON s.id = c.set_id
JOIN value rv ON rv.run_id = c.ref_run_id
LEFT JOIN value cv ON cv.run_id = c.cand_run_id AND cv.key_id = rv.key_id AND cv.idx = rv.idx
WHERE {test}
"""


MISMATCH_TAP_KEY = """
CREATE VIEW mismatch_tap_key AS
SELECT c.set_id AS set_id, c.id AS comparison_id, k.key_id AS key_id
FROM comparison c
JOIN tap k ON k.run_id = c.cand_run_id
WHERE NOT EXISTS (SELECT 1 FROM tap r WHERE r.run_id = c.ref_run_id AND r.key_id = k.key_id
                  AND r.n_components = k.n_components)
"""

MISMATCH_KEY = """
CREATE VIEW mismatch_key AS
SELECT set_id, comparison_id, key_id FROM mismatch_value_key
UNION ALL
SELECT set_id, comparison_id, key_id FROM mismatch_tap_key
"""
