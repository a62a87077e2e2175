"""MCI (Maintenance Control Index, 舗装の維持修繕の計画に関する調査研究, 1981).

MCI = 10 - 1.48 C^0.3 - 0.29 D^0.7 - 0.47 sigma^0.2, and the variants without sigma
MCI0 = 10 - 1.51 C^0.3 - 0.30 D^0.7, MCI1 = 10 - 2.23 C^0.3, MCI2 = 10 - 0.54 D^0.7;
the index reported is the minimum of those that can be computed. C = crack ratio (%),
D = rut depth (mm), sigma = flatness (mm, 3 m profilometer).
"""

from __future__ import annotations

from dataclasses import dataclass

from pavement.errors import ConfigError

#: MCI >= 5 desirable, <= 4 repair needed, <= 3 urgent.
MCI_REPAIR_AT = 4.0
MCI_URGENT_AT = 3.0


@dataclass(frozen=True)
class MciResult:
    mci: float | None  # with sigma, None when sigma is unknown
    mci0: float
    mci1: float
    mci2: float

    @property
    def value(self) -> float:
        """The reported MCI: the minimum of the variants that were computed."""
        candidates = [self.mci0, self.mci1, self.mci2]
        if self.mci is not None:
            candidates.append(self.mci)
        return min(candidates)


def mci(crack_ratio_pct: float, rut_depth_mm: float, sigma_mm: float | None = None) -> MciResult:
    """MCI and its variants. Negative inputs are refused; values are not clipped."""
    for name, value in (("crack_ratio_pct", crack_ratio_pct), ("rut_depth_mm", rut_depth_mm)):
        if value < 0:
            raise ConfigError(f"{name} must be >= 0 for MCI, got {value}")
    if sigma_mm is not None and sigma_mm < 0:
        raise ConfigError(f"sigma_mm must be >= 0 for MCI, got {sigma_mm}")
    c03 = crack_ratio_pct**0.3
    d07 = rut_depth_mm**0.7
    full = None if sigma_mm is None else 10 - 1.48 * c03 - 0.29 * d07 - 0.47 * sigma_mm**0.2
    return MciResult(
        mci=full,
        mci0=10 - 1.51 * c03 - 0.30 * d07,
        mci1=10 - 2.23 * c03,
        mci2=10 - 0.54 * d07,
    )


def sigma_from_iri(iri_mm_per_m: float) -> float:
    """Flatness sigma (mm) from IRI by the handbook regression IRI = 1.2054 sigma + 0.123."""
    return max(0.0, (iri_mm_per_m - 0.123) / 1.2054)
