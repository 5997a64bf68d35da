"""The signal catalogue: how every published value and every setpoint is named, built and parsed.

A name is `<element>.<quantity>`: the element is `bus.<n>`, `line.<k>`, `trafo.<k>`, `cap.<n>`
(numbers as the feeder publishes them), `grid`, `time`, or a DER's name (`pv1`); the quantity
carries its unit (`vm_pu`, `p_mw`, `loading_pct`, ...). Setpoints use the same scheme:
`<der>.p_limit_mw`, `<der>.q_set_mvar`, `trafo.<k>.tap`, `cap.<n>.step`; field devices (breakers,
reclosers, a feeder-head regulator) and SCADA commands also deliver `line.<k>.closed` (1 closed, 0
open: a line in service at the base case opened by its breaker) and `grid.source_ratio` (the source
voltage as a multiple of its base value). These two are not controller actions. The channel's copies
are prefixed: `seen.<signal>` (what the controller saw), `cmd.<setpoint>` / `seen.cmd.<setpoint>`
(what the controller sent / what the device got), `ctrl.<setpoint>` (the setpoint in force).

"DER" is the one word for a converter-connected unit a scenario adds (its `generators:` entries
and the elements devices add); `sgen` appears only where pandapower's table is meant.
"""

from __future__ import annotations

from dataclasses import dataclass

NUMBERED = ("bus", "line", "trafo", "cap")  # elements named `<kind>.<number>`
DER_SIGNALS = ("p_mw", "q_mvar", "p_avail_mw")  # what each DER publishes, in this order
DER_SETPOINTS = ("p_limit_mw", "q_set_mvar")  # what a controller may set on each DER
STORAGE_SIGNALS = ("p_mw", "q_mvar", "soc")  # what each battery publishes (load convention: charging P > 0)
STORAGE_SETPOINTS = ("p_set_mw", "q_set_mvar")  # what a controller may set on each battery
SEEN, COMMAND, IN_FORCE = "seen.", "cmd.", "ctrl."
SOURCE_RATIO = "grid.source_ratio"  # the feeder-head regulator's setpoint: source voltage / its base value
MESSAGE = "msg."  # agent-to-agent messages of controllers whose DER agents talk (`consensus`): msg.<der>.<quantity>


@dataclass(frozen=True)
class Name:
    """A parsed signal or setpoint name."""

    kind: str  # bus | line | trafo | cap | grid | time | label | der
    element: str  # 'bus.18', 'grid', 'pv1'
    quantity: str  # 'vm_pu', 'tap', 'p_limit_mw'
    number: int | None = None  # the published number of a numbered element

    def __str__(self) -> str:
        return f"{self.element}.{self.quantity}"


def parse(name: str) -> Name:
    """Split a name into element and quantity; a ValueError names what is malformed."""
    element, dot, quantity = name.rpartition(".")
    if not dot or not element or not quantity:
        raise ValueError(f"{name!r} is not a signal name (expected <element>.<quantity>, e.g. bus.18.vm_pu)")
    kind, _, number = element.partition(".")
    if kind in NUMBERED:
        if not number.lstrip("-").isdigit():
            raise ValueError(f"{name!r}: {kind} needs a number, e.g. {kind}.1.{quantity}")
        return Name(kind, element, quantity, int(number))
    if kind in ("grid", "time", "label") and not number:
        return Name(kind, element, quantity)
    if "." in element:
        raise ValueError(f"{name!r} is not a signal name (unknown element {element!r})")
    return Name("der", element, quantity)


def element_number(element: str) -> int:
    """The published number of a numbered element such as `bus.18`; a ValueError says what is malformed."""
    kind, _, number = element.partition(".")
    if kind not in NUMBERED or not number.lstrip("-").isdigit():
        raise ValueError(f"{element!r} is not a numbered element (expected e.g. bus.18)")
    return int(number)


def is_bus_voltage(name: str) -> bool:
    """Whether `name` is a bus voltage magnitude, `bus.<n>.vm_pu` (a copy such as `seen.bus.3.vm_pu` is not)."""
    return name.startswith("bus.") and name.endswith(".vm_pu") and name.count(".") == 2


def bus(n: int, quantity: str = "vm_pu") -> str:
    """`bus.<n>.<quantity>`."""
    return f"bus.{n}.{quantity}"


def line(k: int, quantity: str) -> str:
    """`line.<k>.<quantity>`."""
    return f"line.{k}.{quantity}"


def trafo(k: int, quantity: str) -> str:
    """`trafo.<k>.<quantity>` (`tap` is its tap-changer setpoint)."""
    return f"trafo.{k}.{quantity}"


def cap(n: int) -> str:
    """`cap.<n>.step`: the step of switched shunt n (pandapower's shunt index)."""
    return f"cap.{n}.step"


def grid(quantity: str) -> str:
    """`grid.<quantity>`: a feeder-wide value."""
    return f"grid.{quantity}"


def der(name: str, quantity: str) -> str:
    """`<der>.<quantity>`, a DER's signal or setpoint."""
    return f"{name}.{quantity}"


def message(der: str, quantity: str) -> str:
    """The signal a DER agent broadcasts its `quantity` on, `msg.<der>.<quantity>`; events may target it."""
    return f"{MESSAGE}{der}.{quantity}"


def seen(name: str) -> str:
    """What the controller saw of a signal, after the measurement channel."""
    return SEEN + name
