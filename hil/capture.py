"""A labelled capture of a run's Modbus traffic (`cosim run --capture-modbus`), for network-level detectors.

Every Modbus master of the run — the bridge's client of each device, over TCP or RTU, and the
rogue client of a `command_injection` — gets a `Tap`: pymodbus calls it with each PDU it frames
for sending and each one it decodes from the wire, so a row is one Modbus request or response
as that master's end of the connection carried it (an answer a man-in-the-middle proxy forged is
captured forged; a write it rewrites is captured as the bridge sent it). A tap only appends a
list to memory; labels are computed and the Parquet file written once, at the end of the run
(`Capture.write`), also after a run that failed part-way, whose card then says `complete: false`.

Labels: an attack hits a row when it is in force at the row's step, on the row's device, and on
the row's traffic: `fdi` and `replay` the reads whose registers hold the point (every read
without `points`), `command_tamper` the writes to the point, `delay`, `drop` and `flood` every
frame of the bridge's connection, `command_injection` the rogue client's own frames. Scheduled
`events:` reach the wire as these (a command event on a setpoint a device acts for always does:
docs/events.md); events on the simulated channel never touch Modbus and label no row. `label.kind` and `label.target` follow the detector datasets
(`cosim.detection.dataset`): the kinds, and `kind:target` per attack, sorted and '+'-joined;
a device's `wire:` entry is `wire_<kind>` with target `<device>.<point>` (as in events.csv),
a scheduled event its kind and target as the scenario wrote it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cosim.events.registry import kind_of
from cosim.events.schedule import Schedule
from cosim.scenario.devices import WireDelay, WireDrop, WireFDI, WireFlood, WireInjection, WireReplay, WireTamper
from cosim.scenario.schema import Scenario
from hil.coupling import Coupling
from hil.registers import RegisterMap

FILE, CARD = "modbus_capture.parquet", "modbus_capture.json"
BRIDGE, ROGUE = "bridge", "rogue"  # the masters whose traffic is captured
READS, WRITES = frozenset({3, 4, 23}), frozenset({6, 16, 23})  # function codes that read / write registers
COLUMNS = ("wall_time", "step", "direction", "master", "device", "unit_id", "transaction_id", "function_code",
           "address", "count", "write_address", "write_count", "values", "exception_code", "latency_ms")
WALL, ADDRESS, WCOUNT = (COLUMNS.index(name) for name in ("wall_time", "address", "write_count"))  # row positions


def capture_problem(scn: Scenario) -> str | None:
    """Why `--capture-modbus` cannot capture this scenario's traffic (None: it can), in words."""
    if not scn.devices:
        return ("--capture-modbus records the Modbus traffic between the bridge and the scenario's field devices, "
                "but the scenario has no `devices:` block (hardware in the loop: docs/hil.md)")
    if all(d.modbus.transport == "iec104" for d in scn.devices):
        names = ", ".join(d.name for d in scn.devices)
        return (f"--capture-modbus records Modbus traffic, but every device ({names}) has `modbus.transport: "
                "iec104`; give at least one device transport tcp or rtu")
    if scn.placement.of("bridge").remote:
        return ("--capture-modbus takes the capture in the run's own process, but `placement.bridge` runs the "
                "bridge in a process of its own; drop placement.bridge for a captured run")
    return None


@dataclass(frozen=True)
class Hit:
    """One attack on one device's traffic: in force for steps start <= k < end, on the rows `traffic` says
    (`read`, `write`, `all` of the bridge's, or `rogue`), within the register spans (None: any register)."""

    device: str
    start: int
    end: int
    kind: str
    target: str
    traffic: str
    spans: tuple[tuple[int, int], ...] | None = None


class Tap:
    """The trace of one master's connection to one device: pymodbus's `trace_pdu` callback."""

    def __init__(self, capture: "Capture", device: str, master: str):
        self.capture, self.device, self.master = capture, device, master
        self.pending: dict[int, int] = {}  # transaction id -> its request's row (RTU: always 0, one in flight)

    def __call__(self, sending: bool, pdu: Any) -> Any:
        """Append the PDU's row (a response's latency also goes to its request's row); returns it unchanged."""
        now, rows = time.time_ns(), self.capture.rows
        fc = pdu.function_code & 0x7F
        if sending:
            self.pending[pdu.transaction_id] = len(rows)
            rows.append(self._request(now, fc, pdu))
            return pdu
        i = self.pending.pop(pdu.transaction_id, None)
        req = rows[i] if i is not None else None
        latency = (now - req[WALL]) / 1e6 if req is not None else None
        if i is not None:
            self.capture.answered[i] = latency
        error = pdu.isError()
        rows.append((now, self.capture.k, "response", self.master, self.device, pdu.dev_id, pdu.transaction_id, fc,
                     *(req[ADDRESS:WCOUNT + 1] if req is not None else (None,) * 4),
                     () if error else tuple(pdu.registers), pdu.exception_code if error else None, latency))
        return pdu

    def _request(self, now: int, fc: int, pdu: Any) -> tuple:
        if fc == 23:
            where = (pdu.read_address, pdu.read_count, pdu.write_address, len(pdu.write_registers))
            values = tuple(pdu.write_registers)
        elif fc in WRITES:
            values = tuple(pdu.registers)
            where = (pdu.address, len(values), pdu.address, len(values))
        else:
            where, values = (pdu.address, pdu.count, None, None), ()
        return (now, self.capture.k, "request", self.master, self.device, pdu.dev_id, pdu.transaction_id, fc, *where,
                values, None, None)


class Capture:
    """The run's Modbus rows in memory (`k`: the bridge's current step), labelled and written at the end. Rows are
    tuples of numbers and strings, which the garbage collector stops tracking, so a long run's capture does not
    lengthen its collections."""

    def __init__(self, t0: np.datetime64, step_s: float):
        self.t0, self.step_s = t0, step_s
        self.k = -1
        self.rows: list[tuple] = []
        self.answered: dict[int, float] = {}  # request row -> its response's latency (ms)
        self.hits: list[Hit] = []
        self.uncaptured: list[str] = []  # devices not on Modbus (IEC 104)

    def tap(self, device: str, master: str = BRIDGE) -> Tap:
        """A new trace for one connection of `master` to `device`."""
        return Tap(self, device, master)

    def table(self) -> pa.Table:
        """The rows with sim time and labels, as an Arrow table."""
        cols = {name: [r[i] for r in self.rows] for i, name in enumerate(COLUMNS)}
        cols["latency_ms"] = [self.answered.get(i, v) for i, v in enumerate(cols["latency_ms"])]
        step = np.array(cols["step"], np.int64)
        step_ms = int(round(self.step_s * 1000))
        t0 = np.datetime64(self.t0, "ms")
        sim = t0 + step.clip(0) * np.timedelta64(step_ms, "ms")
        attack, kinds, targets = self.labels(cols)
        i32, i16 = pa.int32(), pa.int16()
        return pa.table({
            "wall_time": pa.array(cols["wall_time"], pa.timestamp("ns", tz="UTC")),
            "step": pa.array(step, i32),
            "sim_time": pa.array(np.where(step >= 0, sim, np.datetime64("NaT")), pa.timestamp("ms")),
            **{name: pa.array(cols[name], pa.string()) for name in ("direction", "master", "device")},
            **{name: pa.array(cols[name], i32) for name in ("unit_id", "transaction_id", "function_code", "address",
                                                            "count", "write_address", "write_count")},
            "values": pa.array(cols["values"], pa.list_(pa.uint16())),
            "exception_code": pa.array(cols["exception_code"], i16),
            "latency_ms": pa.array(cols["latency_ms"], pa.float64()),
            "label.attack": pa.array(attack, pa.int8()),
            "label.kind": pa.array(kinds, pa.string()),
            "label.target": pa.array(targets, pa.string()),
        })

    def labels(self, cols: dict[str, list]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: attack (0/1), the kinds and `kind:target` of the attacks hitting it ('+'-joined)."""
        n = len(self.rows)
        step, fc = np.array(cols["step"], np.int64), np.array(cols["function_code"], np.int64)
        device, master = np.array(cols["device"], object), np.array(cols["master"], object)
        num = lambda name: np.array([np.nan if v is None else v for v in cols[name]], float)  # noqa: E731
        ranges = {"read": (num("address"), num("count")), "write": (num("write_address"), num("write_count"))}
        masks = np.zeros((len(self.hits), n), bool)
        for j, h in enumerate(self.hits):
            mask = (device == h.device) & (step >= h.start) & (step < h.end)
            mask &= master == (ROGUE if h.traffic == ROGUE else BRIDGE)
            if h.traffic in ranges:
                mask &= np.isin(fc, list(READS if h.traffic == "read" else WRITES))
                if h.spans is not None:
                    a, c = ranges[h.traffic]
                    mask &= np.any([(a < e) & (a + c > s) for s, e in h.spans] or [np.zeros(n, bool)], axis=0)
            masks[j] = mask
        combos, which = np.unique(masks.T, axis=0, return_inverse=True)  # the few distinct sets of hits
        hit = [[self.hits[j] for j in np.flatnonzero(c)] for c in combos]
        kinds = np.array(["+".join(sorted({h.kind for h in hs})) for hs in hit], object)
        targets = np.array(["+".join(sorted({f"{h.kind}:{h.target}" for h in hs})) for hs in hit], object)
        which = which.reshape(-1)
        return masks.any(axis=0).astype(np.int8), kinds[which], targets[which]

    def write(self, out_dir: Path, status: str, message: str = "") -> Path:
        """`modbus_capture.parquet` and its card `modbus_capture.json` in `out_dir`; complete unless the run failed
        or was interrupted."""
        table = self.table()
        pq.write_table(table, out_dir / FILE, compression="zstd")
        col = {name: table[name].to_pylist() for name in ("direction", "master", "device", "latency_ms", "step",
                                                          "label.attack", "label.kind")}
        requests = [i for i, d in enumerate(col["direction"]) if d == "request"]
        steps = [s for s in col["step"] if s >= 0]
        card = {
            "file": FILE, "complete": status in ("ok", "degraded"), "run_status": status,
            **({"message": message} if message else {}),
            "rows": table.num_rows, "requests": len(requests), "responses": table.num_rows - len(requests),
            "unanswered_requests": sum(col["latency_ms"][i] is None for i in requests),
            "requests_by_master": dict(Counter(col["master"][i] for i in requests)),
            "requests_by_device": dict(Counter(col["device"][i] for i in requests)),
            "steps": [min(steps), max(steps)] if steps else [],
            "attack_rows": sum(col["label.attack"]),
            "rows_by_kind": dict(Counter(k for part in col["label.kind"] if part for k in part.split("+"))),
            "attacks": [{"device": h.device, "kind": h.kind, "target": h.target, "steps": [h.start, h.end],
                         "traffic": h.traffic} for h in self.hits],
            "not_captured": self.uncaptured,
            "where": "each master's end of its connection (the bridge's client, a rogue client): answers as a "
                     "man-in-the-middle proxy forged them, writes as the bridge sent them",
        }
        (out_dir / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        return out_dir / FILE


def _spans(regmap: RegisterMap, points) -> tuple[tuple[int, int], ...]:
    return tuple((p.address, p.end) for p in map(regmap.get, points) if p is not None)


def _hit(device: str, start: int, end: int, kind: str, target: str, a: object, regmap: RegisterMap) -> Hit:
    """The rows a `Wire*` attack on `device` hits (see the module docstring)."""
    if isinstance(a, WireFDI):
        return Hit(device, start, end, kind, target, "read", _spans(regmap, [a.point]))
    if isinstance(a, WireReplay):
        return Hit(device, start, end, kind, target, "read", None if a.points is None else _spans(regmap, a.points))
    if isinstance(a, WireTamper):
        return Hit(device, start, end, kind, target, "write", _spans(regmap, [a.point]))
    if isinstance(a, WireInjection):
        return Hit(device, start, end, kind, target, ROGUE)
    assert isinstance(a, (WireDelay, WireDrop, WireFlood)), a
    return Hit(device, start, end, kind, target, "all")


def hits(couplings: list[Coupling], listed: dict[str, list[tuple[int, int, object]]], schedule: Schedule | None,
         names: Any, step_s: float) -> list[Hit]:
    """Every attack that reaches a device's Modbus traffic: the devices' `wire:` entries as placed on the step
    grid (`listed`: device -> (start, end, spec)) and the schedule's events on a device's wire (`names`:
    `hil.wire_events.WireNames`; a command event on a setpoint a device acts for is always one of these)."""
    regmaps = {c.name: c.regmap for c in couplings}
    out = []
    for device, attacks in listed.items():
        for start, end, a in attacks:
            point = getattr(a, "point", "")
            out.append(_hit(device, start, end, f"wire_{a.kind}", f"{device}.{point}" if point else device, a,
                            regmaps[device]))
    for e in schedule.events if schedule is not None else ():
        if e.wire:
            out += [_hit(device, e.start, e.end, e.kind, e.target_text, a, regmaps[device])
                    for device, a in kind_of(e.spec).wire(e, names, step_s) if device in regmaps]
    return list(dict.fromkeys(out))  # a setpoint written as two points is one attack on the rogue's traffic
