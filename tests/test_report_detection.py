"""Tests of the report's detection section: confusion table, ROC curves per detector and attack kind, score plot."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score, roc_curve

from cosim.report import data, write_report
from cosim.report.plots import detection
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from events_helpers import SHIPPED

N = 40
FDI, REPLAY = range(10, 18), range(25, 32)  # 8 + 7 attacked steps, 25 clean
CNN_ALARMS = [3, 12, 13, 14, 26, 36]
WLS_ALARMS = [*FDI, 20, 21, 22]
# hand count of the alarms above against the attacked steps: TP, FP, FN, TN
HAND = {"cnn": (4, 2, 11, 23), "wls": (8, 3, 7, 22)}


class Tables(HTMLParser):
    """The cell texts of every table row of a page, per table class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.table, self.cell = "", None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.table = dict(attrs).get("class") or ""
        elif tag == "tr":
            self.rows.setdefault(self.table, []).append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[self.table][-1].append(self.cell)
            self.cell = None

    def handle_data(self, text: str) -> None:
        if self.cell is not None:
            self.cell += text


def _tables(doc: str) -> dict[str, list[list[str]]]:
    """Rows of every table of a page, by table class."""
    parser = Tables()
    parser.feed(doc)
    return parser.rows


def _synthetic(detectors: bool = True) -> pd.DataFrame:
    """40 one-minute steps: fdi (partly beside a line outage) and replay attacks, two detectors with known alarms."""
    step = np.arange(N)
    kind = np.full(N, "", dtype=object)
    kind[5:10] = "line_outage"
    kind[list(FDI)] = "fdi"
    kind[10:12] = "fdi+line_outage"
    kind[list(REPLAY)] = "replay"
    attack = np.isin(step, [*FDI, *REPLAY]).astype(float)
    ts = pd.DataFrame({"time": pd.date_range("2025-06-21 10:00", periods=N, freq="1min"),
                       "bus.1.vm_pu": 1.0 - 0.001 * step, "label.attack": attack,
                       "label.disruption": (kind == "line_outage").astype(float), "label.kind": kind})
    if detectors:
        rng = np.random.default_rng(3)
        cnn = np.round(rng.uniform(0, 1, N) + 0.3 * attack, 1)  # rounded: ties between steps
        cnn[[0, 11, 30]] = np.nan  # steps without a score
        ts["detector.cnn.score"] = cnn
        ts["detector.cnn.alarm"] = np.isin(step, CNN_ALARMS).astype(float)
        ts["detector.wls.score"] = np.exp(rng.normal(0, 1, N) + 2 * attack)
        ts["detector.wls.alarm"] = np.isin(step, WLS_ALARMS).astype(float)
        ts["detector.wls.chi2"] = ts["detector.wls.score"] * 120
    return ts


def _sklearn_roc(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ROC points, every threshold kept, NaN scores below every other score."""
    s = np.where(np.isnan(score), np.nanmin(score) - 1.0, score)
    fpr, tpr, _ = roc_curve(positive.astype(int), s, drop_intermediate=False)
    return fpr, tpr


def test_confusion_table_matches_the_hand_count(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, _synthetic(), pd.DataFrame(), {}, {"name": "det"})
    doc = path.read_text(encoding="utf-8")
    rows = _tables(doc)["confusion"]
    assert rows[0] == ["Detector", "TP", "FP", "FN", "TN", "TPR", "FPR", "Precision"]
    got = {r[0]: r[1:] for r in rows[1:]}
    assert sorted(got) == ["cnn", "wls"]
    for name, (tp, fp, fn, tn) in HAND.items():
        assert [int(v) for v in got[name][:4]] == [tp, fp, fn, tn]
        rates = [float(v) for v in got[name][4:]]
        assert rates == pytest.approx([tp / (tp + fn), fp / (fp + tn), tp / (tp + fp)], abs=5e-5)
    assert "15 attacked, 25 clean" in doc


def test_roc_curves_match_sklearn_overall_and_per_kind() -> None:
    ts = _synthetic()
    d = data.prepare(ts, None, {})
    assert sorted(d.attack_kinds) == ["fdi", "replay"]  # the line outage is a disruption, not an attack kind
    panels = detection.roc_panels(d)
    assert [p.title.split(" (")[0] for p in panels] == ["All attacks", "fdi", "replay"]
    attack = ts["label.attack"].to_numpy() == 1
    step = np.arange(N)
    for panel, positive in zip(panels, (attack, np.isin(step, FDI), np.isin(step, REPLAY))):
        keep = positive | ~attack
        for curve in panel.curves:
            score = ts[f"detector.{curve.detector}.score"].to_numpy()[keep]
            fpr, tpr = _sklearn_roc(score, positive[keep])
            np.testing.assert_allclose(curve.fpr, fpr, atol=1e-12)
            np.testing.assert_allclose(curve.tpr, tpr, atol=1e-12)
            s = np.where(np.isnan(score), np.nanmin(score) - 1.0, score)
            assert curve.auc == pytest.approx(roc_auc_score(positive[keep], s), abs=1e-12)


def test_threshold_line_is_inferred_only_when_alarms_follow_the_score() -> None:
    score = np.array([0.1, 0.7, np.nan, 0.55, 0.9, 0.3])
    rule = data.DetectorSeries("rule", score, score >= 0.6, wls=False)
    assert detection.alarm_threshold(rule)[0] == 0.7
    assert detection.alarm_threshold(data.DetectorSeries("x", score, np.array([1, 0, 0, 0, 1, 0], bool), False)) is None
    assert detection.alarm_threshold(data.DetectorSeries("w", score, np.zeros(6, bool), True))[0] == 1.0


def test_section_present_with_detectors_and_absent_without(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, _synthetic(), pd.DataFrame(), {}, {"name": "det"})
    doc = path.read_text(encoding="utf-8")
    section = doc[doc.index('<section id="detection">'):doc.index('<section id="events">')]
    for anchor in ("detector", "detector-roc"):
        assert f'<figure id="{anchor}"><img' in section
    assert 'href="#detection"' in doc and "plot failed" not in doc
    assert re.findall(r'<figure id="([^"]+)"', doc) == ["voltage-envelope", "voltage-heatmap", "detector", "detector-roc"]

    write_report(path, _synthetic(detectors=False), pd.DataFrame(), {}, {"name": "det"})
    doc = path.read_text(encoding="utf-8")
    assert 'id="detection"' not in doc and 'href="#detection"' not in doc
    assert 'id="detector' not in doc and "confusion" not in doc and "ROC" not in doc
    assert re.findall(r'<figure id="([^"]+)"', doc) == ["voltage-envelope", "voltage-heatmap"]


def test_unscored_detector_without_labels_renders(tmp_path: Path) -> None:
    ts = _synthetic(detectors=False).drop(columns=["label.attack", "label.kind"])
    ts["detector.score"], ts["detector.alarm"] = np.nan, 0.0
    path = tmp_path / "report.html"
    write_report(path, ts, pd.DataFrame(), {}, {"name": "det"})
    doc = path.read_text(encoding="utf-8")
    assert "plot failed" not in doc and "No ROC curves" in doc and 'id="detector-roc"' not in doc
    assert _tables(doc)["confusion"][1] == ["detector", "0", "0", "0", str(N), "n/a", "0", "n/a"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """scenarios/attacks/fdi.yaml cut to its first attack (90 min), with two WLS detectors side by side."""
    folder = tmp_path_factory.mktemp("fdi")
    scn = yaml.safe_load((SHIPPED / "fdi.yaml").read_text(encoding="utf-8"))
    scn["clock"]["duration"] = "90min"
    scn["events"] = scn["events"][:1]
    scn.pop("detector")
    scn["detectors"] = [{"kind": "wls", "name": "chi2", "significance": 0.01},
                        {"kind": "wls", "name": "lnr", "significance": 0.01, "alarm": "lnr"}]
    path = folder / "fdi.yaml"
    path.write_text(yaml.safe_dump(scn), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), folder / "out")
    assert outcome.status == "ok", outcome.message
    return outcome


def test_real_run_report_has_the_detection_section(run) -> None:
    doc = (run.out_dir / "report.html").read_text(encoding="utf-8")
    ts = pd.read_parquet(run.out_dir / "timeseries.parquet")
    metrics = json.loads((run.out_dir / "metrics.json").read_text(encoding="utf-8"))
    attack = ts["label.attack"].to_numpy() == 1
    assert attack.sum() == 20 and set(ts["label.kind"][attack]) == {"fdi"}
    section = doc[doc.index('<section id="detection">'):doc.index('<section id="events">')]
    assert '<figure id="detector"><img' in section and '<figure id="detector-roc"><img' in section
    rows = {r[0]: r[1:] for r in _tables(doc)["confusion"][1:]}
    assert sorted(rows) == ["chi2", "lnr"]
    for name in rows:
        alarm = ts[f"detector.{name}.alarm"].to_numpy() == 1
        counts = [(alarm & attack).sum(), (alarm & ~attack).sum(), (~alarm & attack).sum(), (~alarm & ~attack).sum()]
        assert [int(v) for v in rows[name][:4]] == counts
        assert float(rows[name][4]) == pytest.approx(metrics[f"{name}_detector_tpr"], abs=5e-5)
        assert float(rows[name][5]) == pytest.approx(metrics[f"{name}_detector_fpr"], abs=5e-5)
    d = data.prepare(ts, None, {})
    (panel, fdi) = detection.roc_panels(d)
    for curve in panel.curves:
        score = ts[f"detector.{curve.detector}.score"].to_numpy()
        s = np.where(np.isnan(score), np.nanmin(score) - 1.0, score)
        assert curve.auc == pytest.approx(roc_auc_score(attack, s), abs=1e-12)
        assert curve.auc == pytest.approx(metrics[f"{curve.detector}_detector_roc_auc"], abs=1e-12)
