"""Tests for cosim.profiles: PV, wind, load shapes and CSV profiles."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats
from scipy.special import gamma, ndtri

from cosim.profiles import (
    ProfileError,
    clear_sky_ghi,
    csv_profile,
    load_profile,
    load_shape,
    power_curve,
    pv_profile,
    wind_profile,
    wind_speed,
)


def grid(start: str, stop: str, step_s: int) -> np.ndarray:
    return np.arange(np.datetime64(start, "s"), np.datetime64(stop, "s"), np.timedelta64(step_s, "s"))


def haurwitz(zenith_deg: float) -> float:
    cz = np.cos(np.deg2rad(zenith_deg))
    return 1098.0 * cz * np.exp(-0.057 / cz)


# --------------------------------------------------------------------------------------------- PV

def test_clear_sky_zero_at_night_and_never_negative():
    t = grid("2025-06-21", "2025-06-23", 60)
    ghi = clear_sky_ghi(t, 52.0)
    assert ghi.shape == t.shape and ghi.min() == 0.0
    assert clear_sky_ghi(np.array(["2025-06-21T00:00"], "datetime64[s]"), 52.0)[0] == 0.0
    # Local midnight at 90 E is 18:00 UTC; at 12:00 UTC the sun is far up there.
    east = clear_sky_ghi(np.array(["2025-06-21T18:00", "2025-06-21T06:00"], "datetime64[s]"), 52.0, 90.0)
    assert east[0] == 0.0 and east[1] > 800.0
    # Polar night: no sun all day at 80 N around the December solstice.
    assert clear_sky_ghi(grid("2025-12-21", "2025-12-22", 600), 80.0).max() == 0.0


def test_clear_sky_solar_noon_matches_hand_value():
    expected = haurwitz(52.0 - 23.44)  # about 904 W/m2
    t = grid("2025-06-21", "2025-06-22", 60)
    ghi = clear_sky_ghi(t, 52.0, 0.0)
    assert ghi.max() == pytest.approx(expected, rel=0.02)
    assert clear_sky_ghi(np.array(["2025-06-21T12:00"], "datetime64[s]"), 52.0)[0] == pytest.approx(expected, rel=0.02)
    # Solar noon at longitude 0 is within a few minutes (equation of time) of 12:00 UTC ...
    noon = t[ghi.argmax()]
    assert abs(noon - np.datetime64("2025-06-21T12:00", "s")) <= np.timedelta64(10, "m")
    # ... and the day is symmetric around it.
    i = int(ghi.argmax())
    np.testing.assert_allclose(ghi[i - 300:i], ghi[i + 300:i:-1], rtol=0.01, atol=1.0)


def test_clear_sky_longitude_shifts_noon_and_winter_is_lower():
    t = grid("2025-06-21", "2025-06-22", 60)
    noon_30e = t[clear_sky_ghi(t, 52.0, 30.0).argmax()]
    assert abs(noon_30e - np.datetime64("2025-06-21T10:00", "s")) <= np.timedelta64(10, "m")
    winter = clear_sky_ghi(grid("2025-12-21", "2025-12-22", 60), 52.0).max()
    assert winter == pytest.approx(haurwitz(52.0 + 23.44), rel=0.03)


def test_pv_cloudiness_zero_is_clear_sky_and_does_not_draw():
    t = grid("2025-06-21", "2025-06-24", 300)
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    p = pv_profile(t, rng, 48.0, 11.0, cloudiness=0.0)
    np.testing.assert_array_equal(p, np.clip(clear_sky_ghi(t, 48.0, 11.0) / 1000.0, 0.0, 1.0))
    assert rng.bit_generator.state == state


def test_pv_clouds_only_reduce_and_scale_with_cloudiness():
    t = grid("2025-06-01", "2025-06-15", 60)
    clear = pv_profile(t, np.random.default_rng(0), cloudiness=0.0)
    energy = {}
    for c in (0.2, 0.9):
        p = pv_profile(t, np.random.default_rng(1), cloudiness=c)
        assert p.min() >= 0.0 and p.max() <= 1.0
        assert np.all(p <= clear)
        assert np.any(p < 0.9 * clear)
        energy[c] = p.sum()
    assert energy[0.9] < energy[0.2] < clear.sum()
    # A single cloud removes at most 80 %; the output is never wiped out completely in daytime.
    day = clear > 0.1
    assert np.all(pv_profile(t, np.random.default_rng(1), cloudiness=0.9)[day] > 0.0)


def test_pv_cloud_edges_are_smooth():
    t = grid("2025-06-21T08:00", "2025-06-21T16:00", 1)
    clear = pv_profile(t, np.random.default_rng(0), cloudiness=0.0)
    ratio = pv_profile(t, np.random.default_rng(5), cloudiness=1.0) / clear
    assert ratio.min() < 0.5  # clouds did pass
    assert np.abs(np.diff(ratio)).max() < 0.1  # no hard on/off steps at 1 s resolution


def test_pv_seeded_determinism():
    t = grid("2025-06-21", "2025-06-23", 60)
    a = pv_profile(t, np.random.default_rng(42))
    b = pv_profile(t, np.random.default_rng(42))
    c = pv_profile(t, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pv_rejects_bad_cloudiness():
    with pytest.raises(ValueError, match="cloudiness"):
        pv_profile(grid("2025-06-21", "2025-06-22", 3600), np.random.default_rng(0), cloudiness=1.5)


# ------------------------------------------------------------------------------------------- wind

def weibull_scale(mean: float, k: float) -> float:
    return mean / gamma(1.0 + 1.0 / k)


def test_wind_iid_marginal_is_weibull():
    # tau << step: independent samples, so an ordinary KS test applies.
    v = wind_speed(20_000, 600.0, np.random.default_rng(7), mean_speed=6.0, weibull_k=2.5, tau_s=1e-3)
    assert stats.kstest(v, stats.weibull_min(2.5, scale=weibull_scale(6.0, 2.5)).cdf).pvalue > 0.01


def test_wind_correlated_marginal_and_autocorrelation():
    step, tau, k, mean = 600.0, 3600.0, 2.0, 7.5
    v = wind_speed(200_000, step, np.random.default_rng(11), mean, k, tau)
    assert v.min() > 0.0
    assert v.mean() == pytest.approx(mean, rel=0.03)
    weib = stats.weibull_min(k, scale=weibull_scale(mean, k))
    assert stats.kstest(v, weib.cdf).statistic < 0.02
    k_fit, _, c_fit = stats.weibull_min.fit(v, floc=0.0)
    assert k_fit == pytest.approx(k, rel=0.05)
    assert c_fit == pytest.approx(weibull_scale(mean, k), rel=0.03)
    # Back to the Gaussian: lag-1 correlation exp(-step/tau), lag-6 exp(-1).
    x = ndtri(weib.cdf(v))
    assert np.corrcoef(x[:-1], x[1:])[0, 1] == pytest.approx(np.exp(-step / tau), abs=0.01)
    assert np.corrcoef(x[:-6], x[6:])[0, 1] == pytest.approx(np.exp(-1.0), abs=0.02)
    assert np.corrcoef(v[:-1], v[1:])[0, 1] == pytest.approx(np.exp(-step / tau), abs=0.05)


def test_wind_starts_from_stationary_distribution():
    # Almost frozen process: each series stays at its first value, which must itself be Weibull.
    first = np.array([wind_speed(20, 60.0, np.random.default_rng(s), tau_s=1e12)[-1] for s in range(1500)])
    assert stats.kstest(first, stats.weibull_min(2.0, scale=weibull_scale(7.5, 2.0)).cdf).pvalue > 0.01


def test_power_curve_points():
    v = np.array([0.0, 2.99, 3.0, 7.5, 11.99, 12.0, 20.0, 24.99, 25.0, 30.0])
    expected_mid = (7.5**3 - 3.0**3) / (12.0**3 - 3.0**3)  # about 0.232
    p = power_curve(v)
    np.testing.assert_allclose(p, [0, 0, 0, expected_mid, (11.99**3 - 27) / (1728 - 27), 1, 1, 1, 0, 0])
    assert np.all(np.diff(power_curve(np.linspace(3, 12, 50))) > 0)
    assert power_curve(np.array([5.0]), cut_in=4.0, rated=10.0, cut_out=20.0)[0] == pytest.approx(61 / 936)
    with pytest.raises(ValueError):
        power_curve(v, cut_in=12.0, rated=3.0)


def test_wind_profile_is_power_curve_of_speed_and_seeded():
    # Independent steps (tau << step), so every output is the documented power curve of one
    # Weibull(k, c) wind speed: 0 below cut-in, (v^3 - vi^3) / (vr^3 - vi^3) up to rated, 1 up to
    # cut-out, 0 above. Its distribution follows from the Weibull CDF F(v) = 1 - exp(-(v / c)^k).
    mean, k, cut_in, rated, cut_out, n = 8.0, 2.0, 4.0, 11.0, 16.0, 40_000
    c = weibull_scale(mean, k)  # 9.027 m/s for mean 8 m/s, k = 2
    weib = stats.weibull_min(k, scale=c)
    p = wind_profile(n, 600.0, np.random.default_rng(2), mean_speed=mean, weibull_k=k, tau_s=1e-3,
                     cut_in=cut_in, rated=rated, cut_out=cut_out)
    assert p.shape == (n,) and p.min() == 0.0 and p.max() == 1.0

    def binomial_close(hits: np.ndarray, prob: float) -> None:
        assert abs(hits.mean() - prob) < 5 * np.sqrt(prob * (1 - prob) / n)

    # Atoms at 0 (calm or storm) and at 1 (rated to cut-out), by hand from the Weibull CDF.
    binomial_close(p == 0.0, weib.cdf(cut_in) + weib.sf(cut_out))
    binomial_close(p == 1.0, weib.cdf(cut_out) - weib.cdf(rated))
    # Between cut-in and rated: invert the cubic by hand and compare with the truncated Weibull.
    mid = p[(p > 0.0) & (p < 1.0)]
    binomial_close((p > 0.0) & (p < 1.0), weib.cdf(rated) - weib.cdf(cut_in))
    v = np.cbrt(mid * (rated**3 - cut_in**3) + cut_in**3)
    assert v.min() >= cut_in and v.max() < rated
    truncated = lambda x: (weib.cdf(x) - weib.cdf(cut_in)) / (weib.cdf(rated) - weib.cdf(cut_in))  # noqa: E731
    assert stats.kstest(v, truncated).pvalue > 0.01
    # Hand-computed quantile: half of the in-between outputs lie below the power at the conditional median.
    v_med = c * (-np.log(1 - (weib.cdf(cut_in) + weib.cdf(rated)) / 2)) ** (1 / k)
    p_med = (v_med**3 - cut_in**3) / (rated**3 - cut_in**3)
    assert abs((mid < p_med).mean() - 0.5) < 0.02

    # Default turbine (3 / 12 / 25 m/s) with the documented defaults (mean 7.5 m/s, k = 2).
    d = wind_profile(n, 600.0, np.random.default_rng(5), tau_s=1e-3)
    w = stats.weibull_min(2.0, scale=weibull_scale(7.5, 2.0))
    binomial_close(d == 0.0, w.cdf(3.0) + w.sf(25.0))
    binomial_close(d == 1.0, w.cdf(25.0) - w.cdf(12.0))

    # Seeded: the same generator state gives the same profile, another seed another one.
    a = wind_profile(5000, 60.0, np.random.default_rng(2))
    np.testing.assert_array_equal(a, wind_profile(5000, 60.0, np.random.default_rng(2)))
    assert not np.array_equal(a, wind_profile(5000, 60.0, np.random.default_rng(3)))
    assert a.shape == (5000,) and a.min() >= 0.0 and a.max() <= 1.0
    assert wind_speed(0, 60.0, np.random.default_rng(0)).shape == (0,)
    assert wind_profile(0, 60.0, np.random.default_rng(0)).shape == (0,)


# ------------------------------------------------------------------------------------------- load

def test_constant_is_exactly_one():
    t = grid("2025-06-16", "2025-06-23", 900)
    assert np.all(load_shape(t, "constant") == 1.0)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    p = load_profile(t, "constant", rng, 5)
    assert p.shape == (t.size, 5) and np.all(p == 1.0)
    assert rng.bit_generator.state == state


def test_residential_shape():
    t = grid("2025-06-18", "2025-06-19", 60)
    s = load_shape(t, "residential")
    hour = np.arange(t.size) / 60.0
    assert s.max() == 1.0
    assert 18.5 <= hour[s.argmax()] <= 20.5
    night = s[(hour >= 1) & (hour <= 4)]
    assert 0.3 <= night.min() and night.max() <= 0.5
    morning = s[(hour >= 7) & (hour <= 8)].max()
    assert morning > s[(hour >= 10) & (hour <= 11)].max() and morning > night.max() + 0.2
    assert np.abs(np.diff(s)).max() < 0.01  # smooth at minute resolution
    # Same every day, including across midnight.
    t2 = grid("2025-06-18", "2025-06-21", 60)
    np.testing.assert_array_equal(load_shape(t2, "residential"), np.tile(s, 3))


def test_commercial_weekday_vs_weekend():
    assert dt.date(2025, 6, 18).weekday() == 2 and dt.date(2025, 6, 21).weekday() == 5
    t = grid("2025-06-16", "2025-06-23", 900)  # Monday .. Sunday
    s = load_shape(t, "commercial").reshape(7, 96)
    hour = np.arange(96) / 4.0
    office = (hour >= 9) & (hour <= 17)
    night = (hour <= 5) | (hour >= 22)
    assert s.max() == 1.0
    for day in range(5):
        assert s[day, office].min() >= 0.85 and s[day, office].mean() >= 0.9
        assert 0.3 <= s[day, night].min() and s[day, night].max() <= 0.4
    for day in (5, 6):
        assert 0.4 <= s[day, office].mean() <= 0.5 and s[day].max() <= 0.5
    assert np.abs(np.diff(s.ravel())).max() < 0.2  # no jumps, also at Friday/Sunday midnight


def test_unknown_kind_names_allowed_kinds():
    with pytest.raises(ValueError, match="residential") as info:
        load_shape(grid("2025-06-21", "2025-06-22", 3600), "industrial")
    assert "constant" in str(info.value) and "commercial" in str(info.value)
    with pytest.raises(ValueError):
        load_profile(grid("2025-06-21", "2025-06-22", 3600), "industrial", np.random.default_rng(0), 2)


def test_load_profile_noise_statistics():
    t = grid("2025-01-06", "2025-03-03", 60)  # 8 weeks at 1 min
    step, tau, noise = 60.0, 900.0, 0.1
    p = load_profile(t, "residential", np.random.default_rng(9), 4, noise=noise)
    shape = load_shape(t, "residential")
    assert p.shape == (t.size, 4) and p.min() >= 0.0
    e = (p / shape[:, None] - 1.0) / noise
    assert np.abs(e.mean(axis=0)).max() < 0.05
    np.testing.assert_allclose(e.std(axis=0), 1.0, atol=0.05)
    for j in range(4):
        assert np.corrcoef(e[:-1, j], e[1:, j])[0, 1] == pytest.approx(np.exp(-step / tau), abs=0.01)
        assert np.corrcoef(e[:-15, j], e[15:, j])[0, 1] == pytest.approx(np.exp(-1.0), abs=0.05)
    assert np.abs(np.corrcoef(e.T)[np.triu_indices(4, 1)]).max() < 0.05  # independent loads


def test_load_profile_seeded_and_clipped():
    t = grid("2025-06-21", "2025-06-22", 900)
    a = load_profile(t, "commercial", np.random.default_rng(1), 3, noise=0.05)
    np.testing.assert_array_equal(a, load_profile(t, "commercial", np.random.default_rng(1), 3, noise=0.05))
    assert not np.array_equal(a, load_profile(t, "commercial", np.random.default_rng(2), 3, noise=0.05))
    np.testing.assert_array_equal(load_profile(t, "residential", np.random.default_rng(1), 2),
                                  np.column_stack([load_shape(t, "residential")] * 2))
    wild = load_profile(t, "residential", np.random.default_rng(1), 20, noise=3.0)
    assert wild.min() == 0.0


# -------------------------------------------------------------------------------------------- CSV

def write(tmp_path, text: str, name: str = "profile.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_daily_profile_interpolates_periodically(tmp_path):
    path = write(tmp_path, "time,p_mult\n00:00,0.5\n12:00,1.0\n18:00:00,0.8\n")
    t = np.array(["2025-03-01T06:00", "2025-03-01T15:00", "2025-03-01T21:00", "2025-03-02T03:00",
                  "2025-03-07T12:00", "2025-03-07T17:30:00"], dtype="datetime64[s]")
    np.testing.assert_allclose(csv_profile(path, t), [0.75, 0.9, 0.65, 0.5 + 0.5 * 3 / 12, 1.0, 1.0 - 0.2 * 5.5 / 6])
    # Rows in any order, string path, unnamed value column, spaces after commas.
    path2 = write(tmp_path, "time, value\n18:00, 0.8\n00:00, 0.5\n12:00, 1.0\n", "shuffled.csv")
    np.testing.assert_allclose(csv_profile(str(path2), t), csv_profile(path, t))


def test_csv_timestamp_profile_interpolates_linearly(tmp_path):
    path = write(tmp_path, "time,load\n2025-01-01T00:00:00,1.0\n2025-01-01T01:00:00,3.0\n2025-01-02 01:00,0.0\n")
    t = np.array(["2025-01-01T00:00", "2025-01-01T00:30", "2025-01-01T01:00", "2025-01-01T13:00",
                  "2025-01-02T01:00"], dtype="datetime64[s]")
    np.testing.assert_allclose(csv_profile(path, t), [1.0, 2.0, 3.0, 1.5, 0.0])
    # An explicit offset is converted to UTC.
    tz = write(tmp_path, "time,load\n2025-01-01T01:00+01:00,2.0\n2025-01-01T02:00+01:00,4.0\n", "tz.csv")
    np.testing.assert_allclose(csv_profile(tz, np.array(["2025-01-01T00:15"], "datetime64[s]")), [2.5])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("t,value\n00:00,1.0\n", "no 'time' column"),
        ("time\n00:00\n", "exactly one value column"),
        ("time,a,b\n00:00,1.0,2.0\n", "exactly one value column"),
        ("time,value\n00:00,1.0\n25:00,1.0\n", "invalid time of day"),
        ("time,value\n00:00,1.0\nnoon,1.0\n", "mixes"),
        ("time,value\n2025-01-01T00:00,1.0\nyesterday,1.0\n", "unparsable timestamp"),
        ("time,value\n00:00,1.0\n12:00,abc\n", "unparsable value 'abc'"),
        ("time,value\n00:00,1.0\n12:00,\n", "unparsable value"),
        ("time,value\n00:00,1.0\n12:00,-0.5\n", "negative value"),
        ("time,value\n00:00,1.0\n00:00:00,2.0\n", "duplicate"),
        ("time,value\n2025-01-01T02:00,1.0\n2025-01-01T01:00,1.0\n", "strictly increasing"),
        ("time,value\n", "no data rows"),
        ("time,value\n2025-06-21T00:00,1.0\n2025-06-21T12:00,1.0\n", "cover"),
        ("", "not a readable CSV"),
    ],
)
def test_csv_errors(tmp_path, content, message):
    path = write(tmp_path, content, "bad_profile.csv")
    t = grid("2025-06-21", "2025-06-22", 3600)
    with pytest.raises(ProfileError, match=message) as info:
        csv_profile(path, t)
    assert "bad_profile.csv" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_csv_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="not found") as info:
        csv_profile(tmp_path / "nowhere.csv", grid("2025-06-21", "2025-06-22", 3600))
    assert "nowhere.csv" in str(info.value)
