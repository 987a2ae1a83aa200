"""Electrical parameters of the network for the exports that compute (pandapower, CGMES).

The input contract (``spec/sources.md``) carries no conductor type, cross-section or rated
current for edges, and no impedance or losses for transformers: ``edges`` have a ``kind`` and a
``length_m``, transformers a ``capacity_kva``. So every line gets the parameters of the usual
trunk conductor of its kind at its feeder's voltage, and every distribution transformer those
of a typical S13-type oil-immersed 10/0.4 kV unit of its rating. Both are typical values for
studies of the network's shape (voltage profile, loading, losses to a first order), not a
substitute for the asset data; replace them where the asset systems hold conductor types.

Line types (resistance at 20 °C, per km; ``c`` is the capacitance to earth):

======  =====  ==========================  ======  ======  =======  =======
kind    kV     typical conductor           r Ω     x Ω     c nF     max kA
======  =====  ==========================  ======  ======  =======  =======
line    10     JKLYJ-240 (insulated Al)    0.125   0.33    11       0.51
cable   10     YJV22-8.7/15 3×300 (Cu)     0.060   0.087   460      0.50
line    20     JKLYJ-240                   0.125   0.35    10       0.51
cable   20     YJV22-12/20 3×300           0.060   0.095   300      0.50
line    35     LGJ-185/30 (ACSR)           0.163   0.39    9        0.54
cable   35     YJV22-26/35 3×300           0.060   0.11    190      0.48
======  =====  ==========================  ======  ======  =======  =======

A feeder voltage between these picks the nearest; an unknown voltage is 10 kV. Lengths below
:data:`MIN_LENGTH_M` (a zero or blank length in the data) are taken as that length, so no
line has zero impedance.

>>> line_type("cable", 10.0).r_ohm_per_km
0.06
>>> line_type("line", 22.0).name
'JKLYJ-240'
>>> t = transformer_type(400.0)
>>> (t.vk_percent, round(t.vkr_percent, 3))
(4.0, 1.13)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_KV = 10.0
LV_KV = 0.4
MIN_LENGTH_M = 1.0
DEFAULT_CAPACITY_KVA = 200.0
"""Rating assumed for a transformer whose ``capacity_kva`` is blank."""


@dataclass(frozen=True)
class LineType:
    """Per-km parameters of a conductor (positive sequence)."""

    name: str
    r_ohm_per_km: float
    x_ohm_per_km: float
    c_nf_per_km: float
    max_i_ka: float


LINE_TYPES: dict[tuple[str, float], LineType] = {
    ("line", 10.0): LineType("JKLYJ-240", 0.125, 0.33, 11.0, 0.51),
    ("cable", 10.0): LineType("YJV22-8.7/15-3x300", 0.060, 0.087, 460.0, 0.50),
    ("line", 20.0): LineType("JKLYJ-240", 0.125, 0.35, 10.0, 0.51),
    ("cable", 20.0): LineType("YJV22-12/20-3x300", 0.060, 0.095, 300.0, 0.50),
    ("line", 35.0): LineType("LGJ-185/30", 0.163, 0.39, 9.0, 0.54),
    ("cable", 35.0): LineType("YJV22-26/35-3x300", 0.060, 0.11, 190.0, 0.48),
}


def line_type(kind: str, kv: float | None) -> LineType:
    """The typical conductor of ``kind`` (``line`` or ``cable``) at the voltage nearest ``kv``."""
    kv = kv or DEFAULT_KV
    voltages = sorted({v for k, v in LINE_TYPES if k == kind})
    nearest = min(voltages, key=lambda v: (abs(v - kv), v))
    return LINE_TYPES[(kind, nearest)]


@dataclass(frozen=True)
class TransformerType:
    """A two-winding transformer in pandapower's terms (per-unit on its own rating)."""

    sn_mva: float
    vk_percent: float
    vkr_percent: float
    pfe_kw: float
    i0_percent: float

    def series_ohm(self, u_kv: float) -> tuple[float, float]:
        """Series resistance and reactance in ohm referred to a winding of ``u_kv``."""
        z_base = u_kv**2 / self.sn_mva
        z = self.vk_percent / 100 * z_base
        r = self.vkr_percent / 100 * z_base
        return r, math.sqrt(max(z * z - r * r, 0.0))

    def shunt_siemens(self, u_kv: float) -> tuple[float, float]:
        """Magnetising conductance and susceptance in S at ``u_kv`` (susceptance negative:
        inductive, the CIM sign convention)."""
        g = self.pfe_kw / 1000 / u_kv**2
        y = self.i0_percent / 100 * self.sn_mva / u_kv**2
        return g, -math.sqrt(max(y * y - g * g, 0.0))


# kVA: no-load loss P0 kW, load loss Pk kW, no-load current i0 % (S13-type, 10/0.4 kV)
_RATINGS = np.array([30, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000,
                     1250, 1600, 2000, 2500], dtype=np.float64)
_P0_KW = np.array([0.08, 0.10, 0.11, 0.13, 0.15, 0.17, 0.20, 0.24, 0.29, 0.34, 0.41, 0.48,
                   0.57, 0.70, 0.83, 0.97, 1.17, 1.36, 1.60])
_PK_KW = np.array([0.63, 0.91, 1.09, 1.31, 1.58, 1.89, 2.31, 2.73, 3.20, 3.83, 4.52, 5.41,
                   6.20, 7.50, 10.3, 12.0, 14.5, 18.3, 21.2])
_I0_PERCENT = np.array([1.5, 1.3, 1.2, 1.2, 1.1, 1.1, 1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.6, 0.6,
                        0.6, 0.5, 0.5, 0.4, 0.4])


def transformer_type(capacity_kva: float | None) -> TransformerType:
    """Typical parameters of a distribution transformer of ``capacity_kva`` (blank:
    :data:`DEFAULT_CAPACITY_KVA`): losses interpolated on the rating's logarithm between the
    S13 table's ratings, impedance voltage 4 % up to 500 kVA, 4.5 % to 1600, 5 % above."""
    kva = capacity_kva if capacity_kva and capacity_kva > 0 else DEFAULT_CAPACITY_KVA
    log_kva, log_ratings = math.log(kva), np.log(_RATINGS)
    p0 = float(np.interp(log_kva, log_ratings, _P0_KW / _RATINGS)) * kva
    pk = float(np.interp(log_kva, log_ratings, _PK_KW / _RATINGS)) * kva
    i0 = float(np.interp(log_kva, log_ratings, _I0_PERCENT))
    vk = 4.0 if kva <= 500 else 4.5 if kva <= 1600 else 5.0
    return TransformerType(sn_mva=kva / 1000, vk_percent=vk, vkr_percent=pk / kva * 100,
                           pfe_kw=p0, i0_percent=i0)
