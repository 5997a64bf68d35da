"""PV inverter firmware stub (SunSpec models 1, 103, 123, IEEE 1547-2018 models 701, 702, 704, 705, 706 + vendor block).

Register map: ``hil/maps/inverter.yaml`` -- ``SunS`` at 40000, model 1 at
40002, model 103 at 40070, model 123 at 40122, 701 at 40148, 702 at 40303,
704 at 40355, 705 at 40422, 706 at 40473, end model at 40506; vendor
block at 41000 with the heartbeat (41000), the watchdog counter (41001), the
simulation inputs written by the co-simulation -- ``PAvail`` (available PV
power, W, float32 at 41002), ``VTermPu`` (terminal voltage, pu, float32 at
41004), ``HzIn`` (frequency, Hz, float32 at 41006) -- and the nameplate.

Firmware logic (every tick):

* active power ``W = min(PAvail, WLimEff)`` while connected (``Conn=1``);
  ``WLimEff`` ramps to ``WMaxLimPct * WMax`` (``WMaxLim_Ena=1``) or ``WMax``
  in ``WMaxLimPct_RmpTms`` seconds, or at ``--ramp-rate`` %WMax/s when the
  ramp time is 0; a decrease starts from the present output;
* reactive power from ``OutPFSet`` (``OutPFSet_Ena=1``, precedence) or from
  ``VArPct_Mod``/``VAr*Pct`` (``VArPct_Ena=1``), ramped like the power limit,
  clipped to ``VArMax`` and to the VA rating (``--priority p``: active power
  keeps priority and Q is limited to sqrt(VA^2 - P^2); ``q``: the opposite);
* reversion: without a fresh write of ``WMaxLimPct``/``WMaxLim_Ena`` within
  ``WMaxLimPct_RvrtTms`` s (when > 0) the limit returns to 100 %, disabled;
  likewise ``VArPct_RvrtTms`` (VAr percent disabled), ``OutPFSet_RvrtTms``
  (fixed PF disabled) and ``Conn_RvrtTms`` (reconnect);
* measurements: PhV = VTermPu * VNom / sqrt(3), currents from VA, Hz from
  HzIn, WH accumulates exported energy, lossless DC side, St = 4 MPPT when
  producing (5 THROTTLED when the limit binds, 2 SLEEPING without PV power,
  1 OFF when disconnected).

IEEE 1547-2018 functions (:mod:`firmware_stubs.der1547`):

* volt-var (705, ``M705_Ena=1``): Q follows the active curve 1 (V in % of VNom shifted by
  ``VRef - 100``, Q in % of the ``DeptRef`` quantity) through a first-order response with the
  curve's open-loop response time ``RspTms`` (90 % of a step after RspTms s); it replaces the
  model 123 VAr percent (a fixed PF, ``OutPFSet_Ena``, keeps precedence);
* volt-watt (706, ``M706_Ena=1``): the active power is limited to curve 1 (W in % of WMax or of
  the available power), with the same response;
* ``AdptCrvReq=n`` copies curve n into the active curve 1 (``AdptCrvRslt`` 1 COMPLETED, 2 FAILED);
* 704 ``WMaxLimPctEna``/``WMaxLimPct`` limit the active power like model 123 (the lower wins);
  its other points are stored, not acted on;
* fixed trip settings (voltage Category II, frequency defaults, ``der1547.TRIPS``): the DER ceases
  to energize, sets the event bit in Evt1 / ``M701_Alrm`` (cleared on entering service again) and
  St = 7 FAULT while out of the enter-service window; below 0.5 pu it
  exports nothing at once (momentary cessation);
* enter service after a trip or a reconnect (``Conn`` 0 -> 1): voltage and frequency within the
  enter-service window for ``--es-delay`` s (St = 3 STARTING), then the output limit ramps from 0
  to WMax in ``--es-ramp`` s; the stub starts in service;
* 701 mirrors the measurements (energy as TotWhInj, var-hours as TotVarhInj/Abs) and the state,
  702 the nameplate.

Watchdog safe default: the power limit, VAr percent and fixed PF controls
revert to their defaults (100 % / disabled); ``Conn`` is kept.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from . import der1547
from .cli import main
from .device import DeviceStub, fit_sf

SQRT3 = math.sqrt(3.0)

ST_OFF, ST_SLEEPING, ST_STARTING, ST_MPPT, ST_THROTTLED, ST_FAULT = 1, 2, 3, 4, 5, 7
#: model 701 InvSt values
INV_OFF, INV_SLEEPING, INV_STARTING, INV_RUNNING, INV_THROTTLED, INV_FAULT = 0, 1, 2, 3, 4, 6
#: model 701 ThrotSrc bits
THROT_MAX_W, THROT_VOLT_WATT = 1 << 0, 1 << 10
#: curve-point names of the two curve models (the dependent value's point name)
CURVES = {705: "Var", 706: "W"}

_WLIM_POINTS = {"WMaxLimPct", "WMaxLim_Ena"}
_VAR_POINTS = {"VArWMaxPct", "VArMaxPct", "VArAvalPct", "VArPct_Mod", "VArPct_Ena"}
_PF_POINTS = {"OutPFSet", "OutPFSet_Ena"}


class InverterStub(DeviceStub):
    name = "inverter"
    map_file = "inverter.yaml"
    description = "Three-phase PV inverter firmware stub, SunSpec models 1/103/123/701/702/704/705/706 over Modbus-TCP"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--w-max", type=float, default=1_000_000.0, help="rated active power WMax in W (default 1e6)")
        parser.add_argument("--va-max", type=float, default=None, help="apparent power rating in VA (default 1.1 * WMax)")
        parser.add_argument("--var-max", type=float, default=None, help="reactive power rating in var (default 0.44 * WMax)")
        parser.add_argument("--v-nom", type=float, default=400.0, help="nominal line-to-line voltage in V (default 400)")
        parser.add_argument("--hz", type=float, default=50.0, choices=[50.0, 60.0], help="nominal frequency (default 50)")
        parser.add_argument(
            "--ramp-rate", type=float, default=20.0, help="default ramp rate in %% of WMax per s when RmpTms=0 (default 20)"
        )
        parser.add_argument("--priority", choices=["p", "q"], default="p", help="capability priority (default p)")
        parser.add_argument("--serial", default=None, help="serial number (model 1 SN)")
        parser.add_argument("--es-delay", type=float, default=300.0,
                            help="enter-service delay in s after a trip or reconnect (IEEE 1547 default 300)")
        parser.add_argument("--es-ramp", type=float, default=300.0,
                            help="enter-service ramp time in s from 0 to WMax (IEEE 1547 default 300)")

    # ------------------------------------------------------------------ #
    def setup(self, now: float) -> None:
        o = self.options
        self.w_max = float(o.w_max)
        self.va_max = float(o.va_max) if o.va_max else 1.1 * self.w_max
        self.var_max = float(o.var_max) if o.var_max else 0.44 * self.w_max
        self.v_nom = float(o.v_nom)
        self.ramp_rate = max(0.001, float(o.ramp_rate))  # %WMax/s
        self.q_priority = o.priority == "q"
        if self.w_max <= 0 or self.va_max <= 0 or self.v_nom <= 0 or self.var_max < 0:
            raise ValueError("--w-max, --va-max, --v-nom must be > 0 and --var-max >= 0")
        self.dc_v = 1.25 * math.sqrt(2.0) * self.v_nom
        # scale factors that make the nameplate fit the 16-bit registers
        s_max = 1.2 * max(self.va_max, self.w_max, self.var_max)
        sfs = {
            "W_SF": fit_sf(s_max),
            "VA_SF": fit_sf(s_max),
            "VAr_SF": fit_sf(s_max),
            "DCW_SF": fit_sf(s_max),
            "V_SF": fit_sf(2.2 * self.v_nom, 65534),
            # A is the sum of the phase currents, S * sqrt(3) / V_LL, sized for 0.5 pu voltage
            "A_SF": fit_sf(1.2 * 2.0 * SQRT3 * self.va_max / self.v_nom, 65534),
            "DCV_SF": fit_sf(1.2 * self.dc_v, 65534),
            "DCA_SF": fit_sf(1.2 * s_max / self.dc_v, 65534),
        }
        sfs |= {"M701_W_SF": sfs["W_SF"], "M701_VA_SF": sfs["VA_SF"], "M701_Var_SF": sfs["VAr_SF"],
                "M701_V_SF": fit_sf(2.2 * self.v_nom, 65534),
                "M701_A_SF": fit_sf(1.2 * 2.0 * SQRT3 * self.va_max / self.v_nom),
                "M702_W_SF": fit_sf(s_max, 65534), "M702_VA_SF": fit_sf(s_max, 65534), "M702_Var_SF": fit_sf(s_max, 65534),
                "M702_V_SF": fit_sf(2.2 * self.v_nom, 65534), "M702_A_SF": fit_sf(1.2 * SQRT3 * self.va_max / self.v_nom, 65534),
                "M704_WSet_SF": sfs["W_SF"], "M704_VarSet_SF": sfs["VAr_SF"]}
        for k, v in sfs.items():
            self.set(k, v)
        self._nameplate_702()
        self.set("WMax", round(self.w_max))
        self.set("VAMax", round(self.va_max))
        self.set("VArMax", round(self.var_max))
        self.set("VNom", self.v_nom)
        self.set("WRmpDflt", self.ramp_rate)
        self.set("HzIn", float(o.hz))
        self.set("Hz", float(o.hz))
        self.set("DA", o.unit if 1 <= o.unit <= 247 else 1)
        if o.serial:
            self.set("SN", str(o.serial)[:32])
        # controller state
        self.lim_w = self.w_max
        self.lim_target = self.w_max
        self.lim_rate = self.ramp_rate / 100.0 * self.w_max
        self.q_eff = 0.0
        self.q_target = 0.0
        self.q_rate = self.ramp_rate / 100.0 * self.va_max
        self.q_mode_key: tuple[Any, ...] = ()
        self.p_out = 0.0
        self.energy_wh = 0.0
        self.t_wlim: float | None = None
        self.t_var: float | None = None
        self.t_pf: float | None = None
        self.t_conn: float | None = None
        self.protection = der1547.Protection(max(0.0, float(o.es_delay)), max(0.0, float(o.es_ramp)))
        self.q_vv: float | None = None  # volt-var response state (var), None while disabled
        self.p_vw: float | None = None  # volt-watt response state (W limit), None while disabled
        self.varh_inj = self.varh_abs = 0.0
        self.published: dict[str, Any] = {}  # measurement values last written to the image
        self.log.info(
            "nameplate: WMax=%.0f W VA=%.0f VArMax=%.0f VNom=%.1f V Hz=%g ramp=%g %%/s priority=%s",
            self.w_max,
            self.va_max,
            self.var_max,
            self.v_nom,
            o.hz,
            self.ramp_rate,
            o.priority,
        )
        self._update_measurements(0.0)

    def _nameplate_702(self) -> None:
        """Model 702: ratings and settings from the nameplate (settings are stored, not acted on)."""
        i_max = SQRT3 * self.va_max / self.v_nom
        pf = self.w_max / math.hypot(self.w_max, self.var_max)
        for pre in ("Rtg", ""):
            vals = {"WMax": self.w_max, "VAMax": self.va_max, "VarMaxInj": self.var_max, "VarMaxAbs": self.var_max,
                    "VNom": self.v_nom, "VMax": 1.2 * self.v_nom, "VMin": 0.45 * self.v_nom, "AMax": i_max,
                    "PFOvrExt": pf, "PFUndExt": pf}
            for k, v in vals.items():
                self.set(f"M702_{k}{pre}", v)

    # ------------------------------------------------------------------ #
    def on_write(self, values: dict[str, Any], now: float) -> None:
        keys = set(values)
        for model in CURVES:
            if f"M{model}_AdptCrvReq" in keys:
                self._adopt_curve(model, int(values[f"M{model}_AdptCrvReq"]))
        if keys & _WLIM_POINTS:
            self.t_wlim = now
        if keys & _VAR_POINTS:
            self.t_var = now
        if keys & _PF_POINTS:
            self.t_pf = now
        if "Conn" in keys:
            self.t_conn = now
            self.log.info("connection control: %s", "CONNECT" if values["Conn"] else "DISCONNECT")

    def _adopt_curve(self, model: int, n: int) -> None:
        """AdptCrvReq=n: copy curve n into the active curve 1 (COMPLETED), FAILED for an unknown curve."""
        pre = f"M{model}_"
        if not 1 <= n <= int(self.get(pre + "NCrv")):
            self.set(pre + "AdptCrvRslt", 2)
            self.log.info("model %d: AdptCrvReq=%d: no such curve", model, n)
            return
        for p in self.image.map.points:
            if p.name.startswith(f"{pre}Crv{n}_") and not p.name.endswith("_ReadOnly"):
                self.image.set_raw(p.name.replace(f"Crv{n}_", "Crv1_", 1), self.image.raw(p.name))
        self.set(pre + "AdptCrvRslt", 1)
        self.log.info("model %d: curve %d adopted as the active curve", model, n)

    def _curve(self, model: int) -> tuple[list[tuple[float, float]], int, float]:
        """The active curve 1 of model 705/706: (points as (V %, dependent %), DeptRef, RspTms in s)."""
        pre, y = f"M{model}_Crv1_", CURVES[model]
        n = max(1, min(int(self.get(pre + "ActPt") or 1), int(self.get(f"M{model}_NPt"))))
        pts = sorted((float(self.get(f"{pre}Pt{i}_V") or 0.0), float(self.get(f"{pre}Pt{i}_{y}") or 0.0))
                     for i in range(1, n + 1))
        return pts, int(self.get(pre + "DeptRef") or 0), float(self.get(pre + "RspTms") or 0.0)

    def _volt_var(self, v_pct: float, p: float, dt: float) -> float | None:
        """The volt-var response (var) at the terminal voltage, None when 705 is disabled."""
        if not self.get("M705_Ena"):
            self.q_vv = None
            return None
        pts, ref, t_ol = self._curve(705)
        v_ref = float(self.get("M705_Crv1_VRef") or 100.0)
        base = {0: self.w_max, 1: self.var_max, 2: min(self.var_max, math.sqrt(max(0.0, self.va_max**2 - p**2))),
                3: self.va_max}.get(ref, self.var_max)
        target = der1547.curve(pts, v_pct - (v_ref - 100.0)) / 100.0 * base
        self.q_vv = der1547.lag(self.q_eff if self.q_vv is None else self.q_vv, target, dt, t_ol)
        return self.q_vv

    def _volt_watt(self, v_pct: float, p_avail: float, dt: float) -> float:
        """The volt-watt limit (W) at the terminal voltage, infinite when 706 is disabled."""
        if not self.get("M706_Ena"):
            self.p_vw = None
            return math.inf
        pts, ref, t_ol = self._curve(706)
        base = p_avail if ref == 1 else self.w_max
        target = der1547.curve(pts, v_pct) / 100.0 * base
        self.p_vw = der1547.lag(self.p_out if self.p_vw is None else self.p_vw, target, dt, t_ol)
        return self.p_vw

    def _revert_wlim(self, why: str) -> None:
        if self.get("WMaxLim_Ena") or self.get("WMaxLimPct") != 100.0:
            self.log.info("%s: WMaxLimPct -> 100 %%, WMaxLim_Ena -> 0", why)
        self.set("WMaxLimPct", 100.0)
        self.set("WMaxLim_Ena", 0)
        self.t_wlim = None

    def _revert_var(self, why: str) -> None:
        if self.get("VArPct_Ena"):
            self.log.info("%s: VArPct_Ena -> 0", why)
        self.set("VArPct_Ena", 0)
        self.t_var = None

    def _revert_pf(self, why: str) -> None:
        if self.get("OutPFSet_Ena"):
            self.log.info("%s: OutPFSet_Ena -> 0", why)
        self.set("OutPFSet_Ena", 0)
        self.t_pf = None

    def _reversion(self, now: float) -> None:
        rv = self.get("WMaxLimPct_RvrtTms")
        if self.t_wlim is not None and rv and now - self.t_wlim >= rv:
            self._revert_wlim(f"WMaxLimPct reversion after {rv} s")
        rv = self.get("VArPct_RvrtTms")
        if self.t_var is not None and rv and now - self.t_var >= rv:
            self._revert_var(f"VArPct reversion after {rv} s")
        rv = self.get("OutPFSet_RvrtTms")
        if self.t_pf is not None and rv and now - self.t_pf >= rv:
            self._revert_pf(f"OutPFSet reversion after {rv} s")
        rv = self.get("Conn_RvrtTms")
        if self.t_conn is not None and rv and now - self.t_conn >= rv:
            if not self.get("Conn"):
                self.log.info("Conn reversion after %s s: CONNECT", rv)
            self.set("Conn", 1)
            self.t_conn = None

    def safe_default(self, now: float) -> None:
        self._revert_wlim("watchdog")
        self._revert_var("watchdog")
        self._revert_pf("watchdog")

    # ------------------------------------------------------------------ #
    def _step_limit(self, dt: float) -> None:
        pcts = [float(self.get(pct) or 0.0) for ena, pct in (("WMaxLim_Ena", "WMaxLimPct"),
                                                              ("M704_WMaxLimPctEna", "M704_WMaxLimPct")) if self.get(ena)]
        target = min(1.0, max(0.0, min(pcts, default=100.0) / 100.0)) * self.w_max
        if target != self.lim_target:
            if target < self.lim_w:
                # ramp down from the present output, not through headroom
                self.lim_w = max(target, min(self.lim_w, self.p_out))
            rmp = float(self.get("WMaxLimPct_RmpTms") or 0)
            if rmp > 0:
                self.lim_rate = max(abs(target - self.lim_w) / rmp, 1e-9)
            else:
                self.lim_rate = self.ramp_rate / 100.0 * self.w_max
            self.lim_target = target
        self.lim_w = _approach(self.lim_w, self.lim_target, self.lim_rate * dt)

    def _q_request(self, p: float) -> tuple[float, bool, tuple[Any, ...]]:
        """(requested Q, immediate?, key identifying the setpoint)."""
        if self.get("OutPFSet_Ena"):
            pf = float(self.get("OutPFSet") or 1.0)
            apf = min(1.0, max(0.01, abs(pf)))
            q = p * math.tan(math.acos(apf)) * (1.0 if pf >= 0 else -1.0)
            return q, True, ("pf", pf)
        if self.get("VArPct_Ena"):
            mod = int(self.get("VArPct_Mod") or 0)
            if mod == 1:
                pct = float(self.get("VArWMaxPct") or 0.0)
                return pct / 100.0 * self.w_max, False, ("var", mod, pct)
            if mod == 2:
                pct = float(self.get("VArMaxPct") or 0.0)
                return pct / 100.0 * self.var_max, False, ("var", mod, pct)
            if mod == 3:
                pct = float(self.get("VArAvalPct") or 0.0)
                aval = min(self.var_max, math.sqrt(max(0.0, self.va_max**2 - p**2)))
                return pct / 100.0 * aval, False, ("var", mod, pct)
        return 0.0, False, ("off",)

    def tick(self, now: float, dt: float) -> None:
        self._reversion(now)
        self._step_limit(dt)
        hz_nom = float(self.options.hz)
        self.protection.update(max(0.0, float(self.get("VTermPu") or 0.0)),
                               float(self.get("HzIn") or hz_nom) / hz_nom, bool(self.get("Conn")), dt)
        self._update_measurements(dt)

    def _update_measurements(self, dt: float) -> None:
        prot = self.protection
        v_pu = max(0.0, float(self.get("VTermPu") or 0.0))
        connected = bool(self.get("Conn"))
        energized = connected and not prot.tripped and v_pu >= der1547.CESSATION_PU
        p_avail = max(0.0, float(self.get("PAvail") or 0.0))
        p_vw = self._volt_watt(100.0 * v_pu, p_avail, dt)
        p_lim = min(self.lim_w, p_vw, prot.level * self.w_max)
        p = min(p_avail, p_lim) if energized else 0.0
        q_vv = self._volt_var(100.0 * v_pu, p, dt)
        q_req, immediate, key = self._q_request(p)
        if q_vv is not None and key[0] != "pf":
            q_req, immediate, key = q_vv, True, ("vv",)
        q_req = max(-self.var_max, min(self.var_max, q_req))
        if immediate:
            self.q_eff = q_req
            self.q_target = q_req
        else:
            if key != self.q_mode_key:
                rmp = float(self.get("VArPct_RmpTms") or 0)
                if rmp > 0:
                    self.q_rate = max(abs(q_req - self.q_eff) / rmp, 1e-9)
                else:
                    self.q_rate = self.ramp_rate / 100.0 * self.va_max
            self.q_target = q_req
            self.q_eff = _approach(self.q_eff, self.q_target, self.q_rate * dt)
        self.q_mode_key = key
        q = self.q_eff if energized else 0.0
        # capability: sqrt(P^2 + Q^2) <= VA rating
        if self.q_priority:
            q = max(-self.va_max, min(self.va_max, q))
            p = min(p, math.sqrt(max(0.0, self.va_max**2 - q**2)))
        else:
            p = min(p, self.va_max)
            q_cap = math.sqrt(max(0.0, self.va_max**2 - p**2))
            q = max(-q_cap, min(q_cap, q))
        self.p_out = p
        s = math.hypot(p, q)
        self.energy_wh += p * dt / 3600.0
        self.varh_inj += max(0.0, q) * dt / 3600.0
        self.varh_abs += max(0.0, -q) * dt / 3600.0

        v_ll = v_pu * self.v_nom
        v_ph = v_ll / SQRT3
        i_ph = s / (3.0 * v_ph) if v_ph > 1.0 else 0.0
        pf = 100.0 if s < 1e-6 else (p / s * 100.0) * (-1.0 if q < 0 else 1.0)
        throttled = energized and p_avail > p + max(1e-6 * self.w_max, 1.0)
        if not connected:
            st = ST_OFF
        elif prot.faulted:
            st = ST_FAULT
        elif prot.starting:
            st = ST_STARTING
        elif p_avail <= 0.0:
            st = ST_SLEEPING
        elif throttled:
            st = ST_THROTTLED
        else:
            st = ST_MPPT
        dcw = p
        dcv = self.dc_v if p_avail > 0 and energized else 0.0
        dca = dcw / dcv if dcv > 0 else 0.0
        hz = float(self.get("HzIn") or self.options.hz)
        tmp = 25.0 + 15.0 * p / self.w_max
        vals = {
            "W": p,
            "VA": s,
            "VAr": q,
            "PF": pf,
            "A": 3.0 * i_ph,
            "AphA": i_ph,
            "AphB": i_ph,
            "AphC": i_ph,
            "PPVphAB": v_ll,
            "PPVphBC": v_ll,
            "PPVphCA": v_ll,
            "PhVphA": v_ph,
            "PhVphB": v_ph,
            "PhVphC": v_ph,
            "Hz": hz,
            "WH": int(self.energy_wh) % (1 << 32),
            "DCW": dcw,
            "DCV": dcv,
            "DCA": dca,
            "TmpCab": tmp,
            "TmpSnk": tmp + 10.0 * p / self.w_max,
            "TmpTrns": tmp,
            "TmpOt": 25.0,
            "St": st,
            "WLimEff": self.lim_w,
            "VArSet": self.q_eff,
            "Evt1": prot.events,
        }
        self._publish(vals)
        inv_st = {ST_OFF: INV_OFF, ST_SLEEPING: INV_SLEEPING, ST_STARTING: INV_STARTING, ST_MPPT: INV_RUNNING,
                  ST_THROTTLED: INV_THROTTLED, ST_FAULT: INV_FAULT}[st]
        throt = (THROT_VOLT_WATT if throttled and p_vw <= p + 1.0 else 0) | (THROT_MAX_W if throttled and self.lim_w <= p + 1.0 else 0)
        m701 = {"St": int(energized), "InvSt": inv_st, "ConnSt": int(energized), "Alrm": prot.events,
                "W": p, "VA": s, "Var": q, "PF": pf / 100.0, "A": 3.0 * i_ph, "LLV": v_ll, "LNV": v_ph, "Hz": hz,
                "TotWhInj": int(self.energy_wh) % (1 << 32), "TotVarhInj": int(self.varh_inj) % (1 << 32),
                "TotVarhAbs": int(self.varh_abs) % (1 << 32), "TmpCab": tmp, "TmpSnk": vals["TmpSnk"], "TmpOt": 25.0,
                "ThrotPct": 100.0 * (1.0 - p / p_avail) if throttled and p_avail > 0 else 0.0, "ThrotSrc": throt}
        for ph, (ll, nxt) in enumerate((("L1L2", 2), ("L2L3", 3), ("L3L1", 1)), 1):
            m701 |= {f"WL{ph}": p / 3.0, f"VAL{ph}": s / 3.0, f"VarL{ph}": q / 3.0, f"PFL{ph}": pf / 100.0,
                     f"AL{ph}": i_ph, f"V{ll}": v_ll, f"VL{ph}": v_ph}
        self._publish({f"M701_{k}": v for k, v in m701.items()})

    def _publish(self, values: dict[str, Any]) -> None:
        """Set the read-only measurement points whose value changed since the last tick (encoding is the tick's cost)."""
        for k, v in values.items():
            if self.published.get(k, self) != v:
                self.set(k, v)
                self.published[k] = v


def _approach(x: float, target: float, step: float) -> float:
    if x < target:
        return min(target, x + step)
    if x > target:
        return max(target, x - step)
    return x


if __name__ == "__main__":
    sys.exit(main(InverterStub))
