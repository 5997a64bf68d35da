"""The safety guard on its own: allow-list, clamps, rate limits, read-only, counts."""

from __future__ import annotations

import math

import pytest

from hil.guard import Guard, Rule


def guard(read_only: bool = False) -> Guard:
    return Guard("inv1", ["WMaxLimPct", "VArWMaxPct", "WMaxLim_Ena"],
                 {"WMaxLimPct": Rule(0, 80, rate=10), "VArWMaxPct": Rule(-44, 44)}, read_only)


def test_a_write_within_limits_passes_unchanged():
    g = guard()
    d = g.check("VArWMaxPct", 20.0, now=0.0)
    assert (d.value, d.blocked, d.clamped) == (20.0, False, False)
    assert (g.blocked, g.clamped) == (0, 0)


def test_values_beyond_the_limits_are_clamped_and_counted():
    g = guard()
    d = g.check("VArWMaxPct", -60.0, now=0.0)
    assert d.value == -44.0 and d.clamped and "limits" in d.reason
    assert d.target == "inv1.VArWMaxPct"
    assert g.clamped == 1


def test_the_rate_limit_counts_from_what_the_device_holds():
    g = guard()
    g.settle("WMaxLimPct", 80.0, now=100.0)
    d = g.check("WMaxLimPct", 0.0, now=100.5)  # 10 %/s for 0.5 s
    assert d.value == pytest.approx(75.0) and "rate" in d.reason
    g.settle("WMaxLimPct", d.value, now=100.5)
    assert g.check("WMaxLimPct", 70.0, now=101.0).value == 70.0  # within reach: passes
    assert g.clamped == 1


def test_idle_time_builds_no_budget_for_a_larger_jump():
    g = guard()  # 10 %/s, at most one step (1 s) of budget per decision
    g.settle("WMaxLimPct", 80.0, now=0.0)
    d = g.check("WMaxLimPct", 20.0, now=6.0)  # 6 s idle: still only 10 %
    assert d.value == pytest.approx(70.0) and "rate" in d.reason
    g.settle("WMaxLimPct", d.value, now=6.0)
    assert g.check("WMaxLimPct", 20.0, now=6.5).value == pytest.approx(65.0)  # half a step: half the budget
    assert g.check("WMaxLimPct", 20.0, now=7.0).value == pytest.approx(65.0)  # 0.5 s since that decision
    g.settle("WMaxLimPct", 65.0, now=7.0)
    d = g.check("WMaxLimPct", 300.0, now=60.0)  # upwards after a long idle: clamp and rate together
    assert d.value == pytest.approx(75.0) and "limits" in d.reason and "rate" in d.reason
    assert g.clamped == 4


def test_the_budget_per_decision_is_one_step_of_the_callers_clock():
    g = Guard("inv1", ["WMaxLimPct"], {"WMaxLimPct": Rule(0, 100, rate=10)}, max_dt=0.1)  # 0.1 s steps
    g.settle("WMaxLimPct", 100.0, now=0.0)
    values = []
    for k in range(1, 6):
        d = g.check("WMaxLimPct", 0.0, now=0.1 * k)
        g.settle("WMaxLimPct", d.value, now=0.1 * k)
        values.append(d.value)
    assert values == pytest.approx([99.0, 98.0, 97.0, 96.0, 95.0])  # 10 %/s, 1 % a step


def test_the_rate_limit_never_leaves_the_limits():
    g = guard()
    g.settle("WMaxLimPct", 100.0, now=0.0)  # the device holds more than the limit allows
    assert g.check("WMaxLimPct", 90.0, now=0.1).value == 80.0


def test_points_outside_the_allow_list_and_non_numbers_are_blocked():
    g = guard()
    d = g.check("Conn", 0, now=0.0)
    assert d.blocked and "allow-list" in d.reason and d.value is None
    assert g.check("WMaxLim_Ena", math.nan, now=0.0).blocked
    assert g.check("WMaxLim_Ena", 1, now=0.0).value == 1  # allowed, no rule
    assert (g.blocked, g.clamped) == (2, 0)


def test_read_only_blocks_every_write_and_every_physics_input():
    g = guard(read_only=True)
    assert g.check("VArWMaxPct", 0.0, now=0.0).blocked
    assert g.check_input("PAvail", 1e5).blocked
    assert g.blocked == 2
    assert not guard().check_input("PAvail", 1e5).blocked


def test_rules_must_be_on_allow_listed_points():
    with pytest.raises(ValueError, match="outside the allow-list"):
        Guard("inv1", ["WMaxLimPct"], {"Conn": Rule(0, 1)})
