"""A dependency graph of taps: "tap TARGET is computed from tap SOURCE".

``tap_edge`` holds, per graph, one row per edge between pairing-key names (a tap's
``key_name``, after ``tap_alias``), with what the edge rests on (``basis``). The
default graph ``nanoBragg`` is nanoBragg's computation chain as its traces show it:
detector basis, beam centre and distance -> pix0 -> pixel position -> distance,
solid angle, obliquity and the diffracted vector; with the incident vector and the
wavelength -> the scattering vector -> with the real-space axes -> fractional hkl
-> rounded hkl -> F_cell; fractional hkl -> F_latt_a/b/c -> F_latt; F_cell and
F_latt -> I_before_scaling; r_e -> r_e_sqr; polarisation from the incident and
diffracted vectors; the final intensity from the factor model's factors; and the
command-line options (a source written ``-N``) that set a tap. Users edit it with
``tracedb graph set|import`` or any SQL client.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_PIX0 = "pix0 = -Fbeam*fdet - Sbeam*sdet + distance*beam (MOSFLM; nanoBragg.c)"
_HKL = "h = a . S, k = b . S, l = c . S (real-space axes dotted with the scattering vector)"
_SINCG = "F_latt_a = sincg(pi*h, Na) (likewise b with k, Nb and c with l, Nc)"

#: (target, sources, basis) of the seeded nanoBragg graph.
NANOBRAGG = (
    ("Fbeam_m", ("beam_center_m", "detector_convention"),
     "the fast beam coordinate is the beam centre (Ybeam under MOSFLM) plus half a pixel "
     "under the MOSFLM convention"),
    ("Sbeam_m", ("beam_center_m", "detector_convention"),
     "the slow beam coordinate is the beam centre (Xbeam under MOSFLM) plus half a pixel "
     "under the MOSFLM convention"),
    ("term_fast", ("Fbeam_m", "fdet_vec"), f"-Fbeam*fdet, the first term of {_PIX0}"),
    ("term_slow", ("Sbeam_m", "sdet_vec"), f"-Sbeam*sdet, the second term of {_PIX0}"),
    ("term_beam", ("distance_m",), f"distance*beam, the third term of {_PIX0}"),
    ("pix0_vector", ("term_fast", "term_slow", "term_beam"), _PIX0),
    ("pix0_vector_meters", ("pix0_vector",), "pix0 printed in metres"),
    ("pixel_pos_meters", ("pix0_vector_meters", "fdet_vec", "sdet_vec"),
     "pixel position = pix0 + Fdet*fdet + Sdet*sdet (the pixel's fast and slow offsets)"),
    ("R_distance_meters", ("pixel_pos_meters",), "R = |pixel position|"),
    ("close_distance_meters", ("distance_m",), "the detector's close distance"),
    ("omega_pixel_sr", ("R_distance_meters", "close_distance_meters"),
     "omega = pixel_size^2 / R^2 * close_distance / R (point-pixel solid angle)"),
    ("obliquity_factor", ("close_distance_meters", "R_distance_meters"),
     "obliquity = close_distance / R"),
    ("diffracted_vec", ("pixel_pos_meters", "R_distance_meters"),
     "diffracted unit vector = pixel position / R"),
    ("lambda_angstroms", ("lambda_meters",), "the wavelength in Angstrom"),
    ("scattering_vec_A_inv", ("diffracted_vec", "incident_vec", "lambda_meters"),
     "S = (diffracted - incident) / lambda"),
    ("rot_a_star_A_inv", ("rot_b_angstroms", "rot_c_angstroms"), "a* = (b x c) / V"),
    ("rot_b_star_A_inv", ("rot_c_angstroms", "rot_a_angstroms"), "b* = (c x a) / V"),
    ("rot_c_star_A_inv", ("rot_a_angstroms", "rot_b_angstroms"), "c* = (a x b) / V"),
    ("hkl_frac", ("scattering_vec_A_inv", "rot_a_angstroms", "rot_b_angstroms",
                  "rot_c_angstroms"), _HKL),
    ("hkl_rounded", ("hkl_frac",), "h0 = round(h) (likewise k0, l0)"),
    ("F_cell", ("hkl_rounded",),
     "the structure factor at the rounded hkl (an HKL file, else -default_F)"),
    ("F_latt_a", ("hkl_frac",), _SINCG),
    ("F_latt_b", ("hkl_frac",), _SINCG),
    ("F_latt_c", ("hkl_frac",), _SINCG),
    ("F_latt", ("F_latt_a", "F_latt_b", "F_latt_c"), "F_latt = F_latt_a * F_latt_b * F_latt_c"),
    ("I_before_scaling", ("F_cell", "F_latt"),
     "I = sum over steps of (F_cell * F_latt)^2, before the scale factors"),
    ("r_e_sqr", ("r_e_meters",), "r_e^2"),
    ("polar", ("incident_vec", "diffracted_vec"),
     "the Kahn polarisation factor from the incident and diffracted directions"),
    ("cos_2theta", ("incident_vec", "diffracted_vec"), "cos(2theta) = incident . diffracted"),
    ("omega_pixel", ("omega_pixel_sr",), "the solid angle the intensity is scaled by"),
    ("I_pixel_final", ("I_before_scaling", "r_e_sqr", "fluence_photons_per_m2", "polar",
                       "omega_pixel", "capture_fraction", "steps"),
     "the factor model: I_pixel_final = r_e_sqr * fluence * I * polar * omega * "
     "capture_fraction / steps"),
    ("floatimage_accumulated", ("I_pixel_final",), "the pixel's value in the float image"),
)


#: (target, options) of the seeded graph: the command-line options (``-N``) that feed
#: a tap, so that a root fed by an option the runs were given differently is a
#: configuration difference (``compare.config``).
OPTIONS = (
    ("beam_center_m", ("-Xbeam", "-Ybeam", "-beam_center")),
    ("Fbeam_m", ("-Xbeam", "-Ybeam", "-convention", "-mosflm", "-xds", "-denzo", "-adxv")),
    ("Sbeam_m", ("-Xbeam", "-Ybeam", "-convention", "-mosflm", "-xds", "-denzo", "-adxv")),
    ("distance_m", ("-distance",)),
    ("close_distance_meters", ("-distance", "-close_distance")),
    ("pixel_pos_meters", ("-pixel", "-detpixels")),
    ("omega_pixel_sr", ("-pixel", "-point_pixel")),
    ("lambda_meters", ("-lambda", "-energy")),
    ("rot_a_angstroms", ("-cell", "-mat", "-misset")),
    ("rot_b_angstroms", ("-cell", "-mat", "-misset")),
    ("rot_c_angstroms", ("-cell", "-mat", "-misset")),
    ("F_cell", ("-default_F", "-hkl")),
    ("F_latt_a", ("-N", "-Na")),
    ("F_latt_b", ("-N", "-Nb")),
    ("F_latt_c", ("-N", "-Nc")),
    ("fluence_photons_per_m2", ("-fluence", "-flux", "-exposure", "-beamsize")),
    ("steps", ("-oversample", "-phisteps", "-mosaic_dom", "-dispsteps", "-hdivsteps",
               "-vdivsteps")),
    ("polar", ("-polar", "-nopolar")),
    ("capture_fraction", ("-detector_thick", "-detector_abs")),
)


def upgrade() -> None:
    op.create_table(
        "tap_edge",
        sa.Column("graph", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("basis", sa.Text),
        sa.PrimaryKeyConstraint("graph", "target", "source", name="pk_tap_edge"),
    )
    op.create_index("ix_tap_edge_source", "tap_edge", ["graph", "source"])
    edge = sa.table("tap_edge", sa.column("graph"), sa.column("target"), sa.column("source"),
                    sa.column("basis"))
    op.bulk_insert(edge, [dict(graph="nanoBragg", target=t, source=s, basis=b)
                          for t, sources, b in NANOBRAGG for s in sources]
                   + [dict(graph="nanoBragg", target=t, source=o,
                           basis="a nanoBragg command-line option that sets it")
                      for t, options in OPTIONS for o in options])


def downgrade() -> None:
    op.drop_index("ix_tap_edge_source", "tap_edge")
    op.drop_table("tap_edge")
