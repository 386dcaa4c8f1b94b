"""How every benchmark prints: two rates side by side, their ratio and the target."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    name: str
    measured: float
    target: str
    met: bool
    value_format: str = ".3f"

    def line(self) -> str:
        value = format(self.measured, self.value_format)
        return f"{self.name}: {value} (target {self.target}) {'met' if self.met else 'MISSED'}"


def rate_line(label: str, value: float, unit: str) -> str:
    return f"  {label:<44} {value:>12,.1f} {unit}"


def ratio_line(ratio: Ratio) -> str:
    return f"  => {ratio.line()}"
