"""Labelled datasets from the co-simulation: per-step seen and true measurements with the schedule's attack labels.

`generate` runs each scenario for `days` seeded days on the mosaik-free rollout (same physics,
channels and events as `cosim run`; day d uses seed `seed + d`, random-event entries too);
`generate_runs` runs `runs` scenarios drawn from a distribution (run r: layout and day seed
`seed + r`). Both write `steps.parquet`, one row per step of every run: `run`, `scenario`, `day`,
`seed`, `step`, `time`, `split`, `label.attack`, `label.disruption`, `label.kind`, `label.target`
(`kind:target` of each active event, target as written, '+'-joined), then `seen.<signal>` for every metered signal
(what the controller and detectors see), `true.<signal>` (the grid's value before the channel)
and `resid.<signal>`, its signed normalised residual in WLS state estimation of the seen values
(what a control centre's estimator reports; NaN where the meter was unused or the estimate failed),
and `wls.chi2`, that estimate's J over its chi-square threshold at 1 % (above 1 the test fails).
Days of a scenario can take another base seed and start dates drawn from a range (`cosim dataset --seed
--dates`). The split is by run, never by step. `dataset.json` is the card: command, scenarios or
distribution, feeders, seeds and counts per run, counts per kind. Windows for a detector are cut
from the rows (`Dataset.windows`), runs kept apart.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from cosim.detection.features import CLOCK, clock_features
from cosim.detection.windows import frame_windows

STEPS, CARD = "steps.parquet", "dataset.json"
RESID = "resid."  # prefix of a residual column, and of a residual among a detector's input names
CHI2 = "wls.chi2"  # column of each step's WLS J over its chi-square threshold (above 1: the test fails)
TRUE = "true."  # prefix of a true-value column (the grid's value before the measurement channel)
META = ("run", "scenario", "day", "seed", "step", "time", "split", "label.attack", "label.disruption", "label.kind")


class DatasetError(ValueError):
    """A dataset folder that cannot be read or does not hold what a detector needs."""


def split_of(day: int, days: int) -> str:
    """train / val / test of day `day` of `days`: the last fifth (at least one day from 2 days on) is test,
    the fifth before it (from 3 days on) validation."""
    n_test = days // 5 if days >= 5 else int(days >= 2)
    n_val = days // 5 if days >= 5 else int(days >= 3)
    return "test" if day >= days - n_test else "val" if day >= days - n_test - n_val else "train"


def with_metering(scn):
    """The scenario with the default metering when it has no detector, so the channel adds meter noise."""
    from cosim.detection.models import Detector, metering_of

    return scn if metering_of(scn) is not None else scn.model_copy(update={"detector": Detector()})


def day_scenario(scn, day: int, seed: int | None = None, dates: tuple[date, date] | None = None):
    """The scenario of day `day`: seed (the file's unless given) + day, random-event entries with their own
    seed shifted too, the start moved to a date drawn from `dates` by that seed (time of day kept),
    and the default metering when the scenario has no detector."""
    from cosim.events.models import RandomEvents

    base = scn.seed if seed is None else seed
    shift = day + base - scn.seed
    events = [e.model_copy(update={"random": e.random.model_copy(update={"seed": e.random.seed + shift})})
              if isinstance(e, RandomEvents) and e.random.seed is not None else e for e in scn.events]
    update = {"seed": base + day, "events": events}
    if dates is not None:
        offset = np.random.default_rng([base + day, 3]).integers((dates[1] - dates[0]).days + 1)
        drawn = dates[0] + timedelta(days=int(offset))
        update["clock"] = scn.clock.model_copy(update={"start": datetime.combine(drawn, scn.clock.start.time())})
    return with_metering(scn.model_copy(update=update))


class _Tap:
    """A controller stand-in that keeps what the rollout shows a controller (the seen values) and sends nothing."""

    oracle = False
    uses_scenario = False
    _event_sink = None

    def __init__(self, names: Sequence[str]):
        self.names, self.rows = tuple(names), []

    def setup(self, info) -> None:
        """Nothing to set up."""

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        self.rows.append([observation[n] for n in self.names])
        return {}


def residuals(asm, names: Sequence[str], seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed normalised WLS residuals (steps x names) of each step's seen values, on the run's estimator,
    and each step's J over its chi-square threshold at the default 1 % (`wls.chi2`)."""
    from cosim.detection.kinds.wls import WLSDetector, build

    wls = build(WLSDetector(), asm, Path("."))
    estimates = [wls.estimate(k, dict(zip(names, row))) for k, row in enumerate(seen)]
    return np.array([e.signed for e in estimates]), np.array([e.score for e in estimates])


def targets_of(schedule, k: int) -> str:
    """`kind:target` (the target as the scenario wrote it) of each event active at step k, sorted and '+'-joined."""
    return "+".join(sorted({f"{e.kind}:{e.target_text}" for e in schedule.active(k)}))


def run_frame(loaded, run: str, day: int, split: str) -> tuple[pd.DataFrame, dict]:
    """The rows of one run of a scenario as it is (controller not run: the feeder open-loop), and its card entry."""
    from controllers.rollout import rollout
    from cosim.assembly import assemble

    scn = loaded.scenario
    asm = assemble(loaded)
    tap = _Tap(asm.estimator.meters.names)
    grid = rollout(asm, tap)
    labels = [asm.schedule.labels(k).signals() for k in range(asm.n_steps)]
    seen = np.array(tap.rows, float)
    true = grid.rows[:, [grid.names.index(n) for n in tap.names]]
    resid, chi2 = residuals(asm, tap.names, seen)
    frame = pd.DataFrame(np.hstack([seen, true, resid, chi2[:, None]]),
                         columns=[*(f"{p}{n}" for p in ("seen.", TRUE, RESID) for n in tap.names), CHI2])
    meta = pd.DataFrame({"run": run, "scenario": scn.name, "day": day, "seed": scn.seed,
                         "step": np.arange(asm.n_steps),
                         "time": asm.inputs.times[:asm.n_steps].astype("datetime64[ms]"),
                         "split": split,
                         "label.attack": [float(x["label.attack"]) for x in labels],
                         "label.disruption": [float(x["label.disruption"]) for x in labels],
                         "label.kind": [str(x["label.kind"]) for x in labels],
                         "label.target": [targets_of(asm.schedule, k) for k in range(asm.n_steps)]})
    entry = {"run": run, "scenario": scn.name, "feeder": scn.grid.feeder, "seed": scn.seed, "split": split,
             "steps": asm.n_steps, "attack_steps": int(meta["label.attack"].sum()),
             "events_per_kind": dict(Counter(e.kind for e in asm.schedule.events))}
    return pd.concat([meta, frame], axis=1), entry


def day_frame(loaded, day: int, days: int, seed: int | None = None,
              dates: tuple[date, date] | None = None) -> tuple[pd.DataFrame, dict]:
    """The rows of day `day` of `days` of a scenario, and its card entry."""
    scn = day_scenario(loaded.scenario, day, seed, dates)
    frame, entry = run_frame(dataclasses.replace(loaded, scenario=scn), f"{scn.name}/day{day:03d}", day,
                             split_of(day, days))
    return frame, {**entry, "start": str(scn.clock.start)}


def generate(scenarios: Sequence, days: int, out: Path, command: str = "",
             on_run: Callable[[str], None] | None = None, seed: int | None = None,
             dates: tuple[date, date] | None = None) -> dict:
    """Write the dataset of `days` days of each loaded scenario to `out` (base seed `seed` instead of each
    file's, start dates drawn from `dates` instead of the file's); returns the card."""
    jobs = [partial(day_frame, loaded, day, days, seed, dates) for loaded in scenarios for day in range(days)]
    card = {"command": command, "days": days,
            "dates": None if dates is None else [str(d) for d in dates],
            "scenarios": [{"name": s.scenario.name, "path": str(s.path),
                           "seeds": [(s.scenario.seed if seed is None else seed) + d for d in range(days)]}
                          for s in scenarios]}
    return _write(jobs, out, card, on_run)


def check_distribution(dist) -> None:
    """DatasetError unless the distribution can make one dataset: one feeder, no whole-day measurement noise."""
    spec = dist.spec
    if len(spec.feeders) > 1:
        raise DatasetError(f"{dist.path}: feeders lists {len(spec.feeders)} feeders "
                           f"({', '.join(f.feeder for f in spec.feeders)}); a dataset holds one measurement set, "
                           "so its distribution draws one feeder: keep one entry (one file per feeder)")
    if spec.events.measurement_noise[1] > 0:
        raise DatasetError(f"{dist.path}: events.measurement_noise is a whole-day fdi event, which would label "
                           "every step an attack; drop it (the dataset's meters add their own noise: "
                           "detector metering)")


def draw_run(dist, run: int, runs: int) -> tuple[pd.DataFrame, dict]:
    """The rows of run `run` of `runs` drawn from a distribution (both seeds: seed + run), and its card entry."""
    seed = dist.spec.seed + run
    drawn = dist.draw(seed, seed)
    loaded = dataclasses.replace(drawn, scenario=with_metering(drawn.scenario))
    frame, entry = run_frame(loaded, f"{dist.spec.name}/run{run:03d}", run, split_of(run, runs))
    ders = [{"name": g.name, "kind": g.kind, "bus": g.bus, "p_mw": g.p_mw} for g in drawn.scenario.generators]
    return frame, {**entry, "layout_seed": seed, "day_seed": seed, "start": str(drawn.scenario.clock.start),
                   "ders": ders}


def generate_runs(dist, runs: int, out: Path, command: str = "",
                  on_run: Callable[[str], None] | None = None) -> dict:
    """Write the dataset of `runs` runs drawn from a loaded distribution to `out`; returns the card."""
    check_distribution(dist)
    jobs = [partial(draw_run, dist, run, runs) for run in range(runs)]
    card = {"command": command,
            "distribution": {"name": dist.spec.name, "path": str(dist.path), "seed": dist.spec.seed, "runs": runs}}
    return _write(jobs, out, card, on_run)


def _write(jobs: Sequence[Callable[[], tuple[pd.DataFrame, dict]]], out: Path, card: dict,
           on_run: Callable[[str], None] | None) -> dict:
    """Run every job (one run each), write steps.parquet and the card (`card` plus the counts) to `out`."""
    from threadpoolctl import threadpool_limits

    frames, entries = [], []
    with threadpool_limits(1):  # the estimator's small matrices: threads only cost (docs/detection.md)
        for job in jobs:
            frame, entry = job()
            frames.append(frame)
            entries.append(entry)
            if on_run is not None:
                on_run(entry["run"])
    names = [tuple(c for c in f.columns if c.startswith("seen.")) for f in frames]
    if len(set(names)) > 1:
        raise DatasetError("the scenarios meter different signals (feeder or detector.measurements differ); "
                           "a dataset holds one measurement set")
    frame = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / STEPS, index=False)
    events = Counter()
    for entry in entries:
        events.update(entry["events_per_kind"])
    card = {**card, "steps": len(frame), "feeders": sorted({e["feeder"] for e in entries}),
            "runs": {split: sum(e["split"] == split for e in entries) for split in ("train", "val", "test")},
            "attack_steps": int(frame["label.attack"].sum()),
            "steps_per_kind": {k: int(v) for k, v in frame["label.kind"].value_counts().items() if k},
            "events_per_kind": dict(sorted(events.items())),
            "signals": [n.removeprefix("seen.") for n in names[0]],
            "residuals": True, "per_run": entries}
    (out / CARD).write_text(json.dumps(card, indent=2))
    return card


@dataclass
class Dataset:
    """A dataset folder read back."""

    path: Path
    frame: pd.DataFrame
    card: dict

    @property
    def signals(self) -> list[str]:
        return list(self.card["signals"])

    def inputs(self, residuals: bool = False, clock: bool = False) -> list[str]:
        """A detector's input names: the metered signals, then (`residuals`) their `resid.` residuals, then
        (`clock`) the time inputs `CLOCK`."""
        if residuals and not self.card.get("residuals"):
            raise DatasetError(f"{self.path} holds no WLS residuals (made before they were recorded): "
                               "make it again with cosim dataset")
        return self.signals + ([RESID + n for n in self.signals] if residuals else []) + (list(CLOCK) if clock else [])

    @property
    def feeder(self) -> str:
        return self.card["feeders"][0]

    def part(self, split: str | Sequence[str] | None) -> pd.DataFrame:
        """The rows of one split (or several, or all with None)."""
        if split is None:
            return self.frame
        wanted = [split] if isinstance(split, str) else list(split)
        return self.frame[self.frame["split"].isin(wanted)]

    def windows(self, names: Sequence[str], length: int, split: str | Sequence[str] | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
        """(windows n x length x names of seen values (or residuals, for `resid.` names), labels 0/1 of each
        window's last step)."""
        columns = [n if n.startswith(RESID) or n in CLOCK else f"seen.{n}" for n in names]
        missing = [n for n, c in zip(names, columns) if c not in self.frame.columns and n not in CLOCK]
        if missing:
            raise DatasetError(f"{self.path} has no seen values of {len(missing)} signal(s), e.g. "
                               f"{', '.join(missing[:3])}")
        rows = self.part(split)
        if not len(rows):
            raise DatasetError(f"{self.path} has no runs in split {split}")
        if any(n in CLOCK for n in names):
            rows = rows.assign(**dict(zip(CLOCK, clock_features(pd.DatetimeIndex(rows["time"])).T)))
        return frame_windows(rows, columns, length), rows["label.attack"].to_numpy(float)


def read_dataset(path: Path) -> Dataset:
    """A folder written by `generate`; DatasetError naming the folder and the missing file otherwise."""
    path = Path(path)
    for name in (STEPS, CARD):
        if not (path / name).is_file():
            raise DatasetError(f"{path} is not a cosim dataset: {name} is missing (make one with cosim dataset)")
    try:
        card = json.loads((path / CARD).read_text())
        frame = pd.read_parquet(path / STEPS)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read the dataset ({exc})") from None
    if missing := [c for c in META if c not in frame.columns]:
        raise DatasetError(f"{path / STEPS} lacks the columns {', '.join(missing)}")
    return Dataset(path, frame, card)
