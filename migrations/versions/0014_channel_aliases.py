"""Channel aliases: the taps of one channel pair on another's.

``tap_alias.kind`` tells the two kinds of alias apart: ``name`` (every alias
before this revision: taps named ``name`` on ``channel``, or on any when ``*``,
pair under the name ``canonical``) and ``channel`` (every tap written on channel
``channel`` pairs on channel ``canonical``; ``name`` is ``*``). The tap keeps the
channel it was written on (``tap.channel``); its pairing key (``tap_key.channel``)
takes the canonical one.

Seeded, nanoBragg's own naming: the PyTorch tap files name their tap point by
``tap_id`` (a tap file's taps are on that channel), the C audit by its
``TRACE_C_TAP5*`` channel:

- ``hkl_subpixel`` -> ``TAP5_HKL`` (per sub-pixel fractional and rounded hkl,
  F_cell, out_of_bounds);
- ``intensity_pre_norm`` -> ``TAP5`` (the intensity before normalisation and
  its factors), with five name aliases on that channel, each read from PyTorch's
  own text trace of the same pixel, which writes the same number under the name C
  uses (``accumulated_intensity`` is ``I_before_scaling``, ``last_omega_applied``
  ``omega_pixel``, ``last_capture_fraction`` ``capture_fraction``,
  ``last_polar`` ``polar``, ``normalized_intensity`` ``I_pixel_final``).

Cost: ALTER TABLE ADD COLUMN with a default (no rewrite on either backend) and
seven rows. Taps loaded before it keep their keys: the seeded aliases name
channels that no tap had before this revision (a tap file's taps were on the main
channel), so nothing becomes stale.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_C_TAP = "the PyTorch tap file {tap_id} is the C audit's TRACE_C_{channel} tap point"
_SAME = ("PyTorch's text trace of the same pixel (phase_e0 20251010T110735Z) writes "
         "this number as {canonical}, the name TRACE_C_TAP5 uses")
CHANNELS = (("hkl_subpixel", "TAP5_HKL"), ("intensity_pre_norm", "TAP5"))
NAMES = (("intensity_pre_norm", "accumulated_intensity", "I_before_scaling"),
         ("intensity_pre_norm", "last_omega_applied", "omega_pixel"),
         ("intensity_pre_norm", "last_capture_fraction", "capture_fraction"),
         ("intensity_pre_norm", "last_polar", "polar"),
         ("intensity_pre_norm", "normalized_intensity", "I_pixel_final"))


def upgrade() -> None:
    op.add_column("tap_alias", sa.Column("kind", sa.Text, nullable=False,
                                         server_default="name"))
    alias = sa.table("tap_alias", sa.column("channel"), sa.column("name"),
                     sa.column("canonical"), sa.column("kind"), sa.column("note"))
    for channel, _canonical in CHANNELS:
        op.execute(alias.delete().where(alias.c.channel == channel)
                   .where(alias.c.name == "*"))
    for channel, name, _canonical in NAMES:
        op.execute(alias.delete().where(alias.c.channel == channel)
                   .where(alias.c.name == name))
    op.bulk_insert(alias, [
        *(dict(channel=channel, name="*", canonical=canonical, kind="channel",
               note=_C_TAP.format(tap_id=channel, channel=canonical))
          for channel, canonical in CHANNELS),
        *(dict(channel=channel, name=name, canonical=canonical, kind="name",
               note=_SAME.format(canonical=canonical))
          for channel, name, canonical in NAMES)])


def downgrade() -> None:
    # 0013 has only name aliases: channel aliases go, with the seeded name aliases
    op.execute("DELETE FROM tap_alias WHERE kind = 'channel'")
    for channel, name, _canonical in NAMES:
        op.execute(f"DELETE FROM tap_alias WHERE channel = '{channel}' AND name = '{name}'")
    # in place (SQLite 3.35+, PostgreSQL), as 0012's downgrade
    op.execute("ALTER TABLE tap_alias DROP COLUMN kind")
