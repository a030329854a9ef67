"""JSON Schemas (draft 2020-12) of every ``--format json`` output, shipped with the
package: ``<command>.json`` per output and ``common.json`` for the parts they share
(a pixel, a side, statuses, diverge's object). ``tracedb schema NAME`` prints one.

Validating needs the ``jsonschema`` package (the ``dev`` extra): :func:`validate`."""

from __future__ import annotations

import json
from importlib import resources

from ..errors import TracedbError

#: Which schema each output follows.
OUTPUTS = {
    "ingest": "ingest", "runs": "runs", "taps": "taps", "taps --diff": "taps_diff",
    "quarantine": "quarantine", "diverge": "diverge", "timeline": "timeline",
    "regress": "regress", "images": "images", "images --timeline": "images_timeline",
    "images --next-pixels": "images_next_pixels", "query": "rows", "sql": "rows",
    "db check": "db_check", "graph show": "graph", "factor-model show": "factor_model",
    "alias list": "alias_list", "accept list": "accept_list",
}


def names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".json"))


def text(name: str) -> str:
    """A schema's JSON text."""
    if name not in names():
        raise TracedbError(f"no schema {name!r}; the schemas: {', '.join(names())}")
    return resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")


def load(name: str) -> dict:
    return json.loads(text(name))


def validate(name: str, document) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` follows schema ``name``
    (references to ``common.json`` resolved from the package)."""
    import jsonschema
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in map(load, names()))
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, registry=registry).validate(document)
