"""The forecast: block: persistence and oracle against the input series, seeded noise growing with lead, the
learned LSTM against persistence on a smooth PV day, the observation and KPIs of real runs, mpc reading the
scenario's forecast, and bad input (exit 2 naming the field)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from controllers.registry import controller_class, instantiate
from controllers.rollout import rollout
from cosim.assembly import assemble
from cosim.forecast import KINDS
from cosim.forecast.base import LOAD, Series
from cosim.forecast.build import build_forecasts, series_of, signal_name, with_noise
from cosim.forecast.kinds.persistence import Persistence
from cosim.scenario.forecast import Forecast
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Controller as ControllerBlock
from cosim.seeding import rng_for
from tests.conftest import BASE, SCENARIOS


def _with(loaded, **forecast):
    """`loaded` with a forecast block."""
    return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"forecast": Forecast(**forecast)}))


@pytest.fixture(scope="module")
def day():
    """ieee33-pv-battery (24 h of 5 min, 3 PV, 1 wind), assembled without a forecast block."""
    loaded = load_scenario(SCENARIOS / "ieee33-pv-battery.yaml")
    return loaded, assemble(loaded)


def test_kinds_are_the_modules():
    assert KINDS == ("learned", "oracle", "persistence")


@pytest.mark.parametrize("seed", range(5))
def test_persistence_holds_the_last_value(seed):
    rng = np.random.default_rng(seed)
    n, m, leads = int(rng.integers(1, 50)), int(rng.integers(1, 6)), int(rng.integers(1, 13))
    values = rng.uniform(0, 3, (n, m))
    series = Series(np.arange(n).astype("datetime64[m]"), tuple(f"s{j}" for j in range(m)), (LOAD,) * m,
                    np.ones(m), values)
    out = Persistence(None).predict(series, leads)
    assert out.shape == (n, leads, m)
    for h in range(leads):
        assert np.array_equal(out[:, h, :], values)


def test_oracle_without_noise_is_the_input_series(day):
    loaded, asm = day
    f = build_forecasts(_with(loaded, kind="oracle", horizon="1h"), asm.inputs, asm.model.load_p_nom)
    inp = asm.inputs
    load = (inp.load_scale * asm.model.load_p_nom).sum(axis=1)  # the feeder's nominal loads times their multipliers
    truth = np.column_stack([inp.der_p_avail_mw, load])
    n, leads = len(truth), f.leads
    assert leads == 12 and f.signals == ("pv1.p_avail_mw", "pv2.p_avail_mw", "pv3.p_avail_mw", "wt1.p_avail_mw",
                                         "grid.load_p_mw")
    for h in range(1, leads + 1):
        assert np.array_equal(f.values[: n - h, h - 1], truth[h:])
    obs = f.at(100)
    assert obs[signal_name("pv2.p_avail_mw", 3 * 300.0)] == truth[103, 1]
    assert "forecast.grid.load_p_mw.+1h" in obs and len(obs) == 12 * 5


def test_noise_std_grows_as_sqrt_of_lead():
    leads, noise = 12, 0.2
    ones = np.ones((20_000, leads, 3))
    rel = with_noise(ones, noise, np.random.default_rng(3)) - 1.0
    expected = noise * np.sqrt(np.arange(1, leads + 1) / leads)
    measured = rel.std(axis=(0, 2))
    # the sample std of 60,000 normal draws is within 1 % of sigma with overwhelming probability (sd 0.29 %)
    assert np.allclose(measured, expected, rtol=0.015)
    assert np.all(np.diff(measured) > 0)
    assert np.array_equal(with_noise(ones, 0.0, np.random.default_rng(3)), ones)


def test_noise_is_seeded_by_the_scenario(day):
    loaded, asm = day
    noisy = _with(loaded, kind="oracle", horizon="1h", noise=0.1)
    a = build_forecasts(noisy, asm.inputs, asm.model.load_p_nom).values
    b = build_forecasts(noisy, asm.inputs, asm.model.load_p_nom).values
    other = dataclasses.replace(noisy, scenario=noisy.scenario.model_copy(update={"seed": 8}))
    c = build_forecasts(other, asm.inputs, asm.model.load_p_nom).values  # same inputs, other noise seed
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    truth = build_forecasts(_with(loaded, kind="oracle", horizon="1h"), asm.inputs, asm.model.load_p_nom).values
    err = np.abs(a - truth).mean(axis=(0, 2))
    assert err[-1] > 2 * err[0]  # sqrt(12) = 3.5 times the std at the horizon as at the first lead
    expected = rng_for(7, "forecast", "noise").standard_normal(truth.shape)
    assert np.allclose(a, np.maximum(truth * (1 + 0.1 * np.sqrt(np.arange(1, 13) / 12)[None, :, None] * expected), 0))


SMOOTH = """\
name: smooth
seed: 3
clock: {start: "2025-06-21T00:00:00", duration: 24h, step: 5min}
site: {latitude: 52.0, longitude: 0.0}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 2.0, cloudiness: 0.0}
"""


def test_learned_beats_persistence_on_a_smooth_pv_day(write_scenario, tmp_path):
    loaded = load_scenario(write_scenario(SMOOTH))
    asm = assemble(loaded)
    truth = series_of(loaded, asm.inputs, asm.model.load_p_nom).values
    leads = 12
    maes = {}
    for kind in ("persistence", "learned"):
        spec = dict(kind=kind, horizon="1h", **({"train_days": 4, "model": str(tmp_path / "f.pt")}
                                                if kind == "learned" else {}))
        f = build_forecasts(_with(loaded, **spec), asm.inputs, asm.model.load_p_nom)
        maes[kind] = np.abs(f.values[:-leads, -1, :] - truth[leads:]).mean(axis=0)  # per signal, at 1 h
    pv, load = 0, 1
    assert maes["learned"][pv] < 0.7 * maes["persistence"][pv], maes
    assert maes["learned"][load] < maes["persistence"][load], maes
    # the checkpoint written by the first build is read back by the next: the same forecasts without training
    again = build_forecasts(_with(loaded, kind="learned", horizon="1h", train_days=1, model=str(tmp_path / "f.pt")),
                            asm.inputs, asm.model.load_p_nom)
    assert np.abs(again.values[:-leads, -1, :] - truth[leads:]).mean(axis=0) == pytest.approx(maes["learned"])


RECORDER = '''
import json
from pathlib import Path
from controllers.base import Controller


class Recorder(Controller):
    """Keeps every step's forecast signals in seen.json next to this file."""

    seen = {}

    def act(self, observation):
        k = int(observation["time.step"])
        Recorder.seen[k] = {n: v for n, v in observation.items() if n.startswith("forecast.")}
        Recorder.seen["measurements"] = [n for n in self.info.measurements if n.startswith("forecast.")]
        Path(__file__).with_name("seen.json").write_text(json.dumps(Recorder.seen))
        return {}
'''


def _run(tmp_path, write_scenario, cli, forecast: str, more: str = ""):
    (tmp_path / "recorder.py").write_text(RECORDER, encoding="utf-8")
    path = write_scenario(BASE + f"controller: {{kind: python, path: recorder.py:Recorder}}\nforecast: {forecast}\n"
                          + more)
    code, output, _ = cli("run", path, "--out", tmp_path / "out", "-q")
    assert code == 0, output[-2000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    return seen, metrics, pd.read_parquet(tmp_path / "out" / "timeseries.parquet")


def test_run_observes_persistence_forecasts_and_scores_them(tmp_path, write_scenario, cli):
    seen, metrics, ts = _run(tmp_path, write_scenario, cli, "{kind: persistence, horizon: 30min}")
    signals = ("pv1.p_avail_mw", "wt1.p_avail_mw", "grid.load_p_mw")
    names = [f"forecast.{s}.+{m}min" for s in signals for m in (5, 10, 15, 20, 25, 30)]
    assert seen["measurements"] == names
    n = len(ts)
    for k in range(n):
        assert sorted(seen[str(k)]) == sorted(names)
        for s in signals:
            assert seen[str(k)][f"forecast.{s}.+20min"] == pytest.approx(ts[s].iloc[k], abs=1e-12)
    # the KPIs by hand from the recorded series: persistence at 30 min is x[k] against x[k + 6]
    x = ts[list(signals)].to_numpy(float)
    err = np.abs(x[:-6] - x[6:])
    assert metrics["forecast_mae_mw"] == pytest.approx(err.mean(), rel=1e-9)
    assert metrics["forecast_nmae"] == pytest.approx(err.sum() / np.abs(x[6:]).sum(), rel=1e-9)
    assert metrics["forecast_load_nmae"] == pytest.approx(err[:, 2].sum() / x[6:, 2].sum(), rel=1e-9)
    assert metrics["forecast_der_nmae"] == pytest.approx(err[:, :2].sum() / x[6:, :2].sum(), rel=1e-9)


def test_run_with_an_oracle_scores_zero(tmp_path, write_scenario, cli):
    seen, metrics, ts = _run(tmp_path, write_scenario, cli, "{kind: oracle, horizon: 15min}")
    assert metrics["forecast_mae_mw"] == pytest.approx(0.0, abs=1e-12)  # the recorded series are the inputs
    assert seen["3"]["forecast.pv1.p_avail_mw.+15min"] == pytest.approx(ts["pv1.p_avail_mw"].iloc[6], abs=1e-12)


def test_a_controller_in_its_own_process_observes_the_same_forecasts(tmp_path, write_scenario, cli):
    block = "{kind: oracle, horizon: 15min, noise: 0.2}"
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    here, _, _ = _run(tmp_path / "a", lambda t: _write(tmp_path / "a", t), cli, block)
    there, _, _ = _run(tmp_path / "b", lambda t: _write(tmp_path / "b", t), cli, block,
                       "placement: {controller: process}\n")
    assert there == here and len(here["measurements"]) == 9


def _write(folder, text):
    (folder / "scenario.yaml").write_text(text, encoding="utf-8")
    return folder / "scenario.yaml"


def _mpc(loaded, **params):
    block = ControllerBlock(kind="mpc", params=params)
    return instantiate(controller_class(block, loaded.base_dir), block, loaded.base_dir)


def test_mpc_reads_the_scenario_forecast(day):
    loaded, _ = day
    clock = loaded.scenario.clock.model_copy(update={"start": loaded.scenario.clock.start.replace(hour=11),
                                                     "duration": 1800.0})
    noon = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"clock": clock}))
    with_oracle = _with(noon, kind="oracle", horizon="1h")
    auto = _mpc(with_oracle)
    r = rollout(assemble(with_oracle), auto)
    assert auto.forecast == "scenario" and not [e for e in r.events if e[1] == "mpc_fallback"]
    plain = _mpc(noon)
    rollout(assemble(noon), plain)
    assert plain.forecast == "persistence"  # no forecast: block
    # the scenario's oracle and the mpc's own oracle see the same available DER power per interval
    mine = _mpc(with_oracle, forecast="oracle")
    rollout(assemble(with_oracle), mine)
    assert np.allclose(auto._p["avail"].value, mine._p["avail"].value)


@pytest.mark.parametrize("block, field, words", [
    ("{kind: crystal_ball, horizon: 1h}", "forecast.kind", "'learned', 'oracle' or 'persistence'"),
    ("{kind: oracle, horizon: 7min}", "forecast.horizon", "horizon 7min is not a multiple of clock.step 5min"),
    ("{kind: oracle, horizon: 0s}", "forecast.horizon", "must be a positive duration"),
    ("{kind: oracle, horizon: 2min}", "forecast.horizon", "horizon 2min is not a multiple of clock.step 5min"),
    ("{kind: persistence, horizon: 1h, model: x.pt}", "forecast", "model is only for kind learned"),
    ("{kind: persistence, horizon: 1d}", "forecast.horizon", "the limit is 20,000,000 (MAX_VALUES)"),
])
def test_bad_forecast_block_exits_2(block, field, words, write_scenario, cli):
    text = BASE.replace("duration: 2h, step: 5min", "duration: 1d, step: 1s") if "1d" in block else BASE
    code, output, _ = cli("validate", write_scenario(text + f"forecast: {block}\n"))
    flat = " ".join(output.split())
    assert code == 2 and f"field {field}" in flat and words in flat, output
    assert "Traceback" not in output


def test_checkpoint_for_another_horizon_exits_2(write_scenario, cli, tmp_path):
    from cosim.forecast.kinds.learned import Net, save

    save(Net(3), {"leads": 3, "window": 6, "hidden": 32, "step_s": 300.0}, tmp_path / "m.pt")
    code, output, _ = cli("validate", write_scenario(BASE + "forecast: {kind: learned, horizon: 1h, model: m.pt}\n"))
    flat = " ".join(output.split())
    assert code == 2 and "field forecast.model" in flat and "trained for 3 leads of 5min" in flat, output


def test_mpc_horizon_beyond_the_forecast_exits_2(write_scenario, cli):
    text = (SCENARIOS / "ieee33-pv-battery.yaml").read_text().replace(
        "controller: {kind: none}", "controller: {kind: mpc, horizon: 2h}\nforecast: {kind: persistence, horizon: 1h}")
    code, output, _ = cli("validate", write_scenario(text))
    flat = " ".join(output.split())
    assert code == 2 and "field controller" in flat and "forecast.grid.load_p_mw.+2h" in flat, output
