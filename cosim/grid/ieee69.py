"""IEEE 69-bus radial feeder (Baran & Wu 1989) built from the shipped CSV data."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import pandapower as pp

VN_KV = 12.66


def case69() -> pp.pandapowerNet:
    """Return the 69-bus feeder as a pandapower net; bus k of the literature is net index k-1."""
    data = resources.files("cosim.grid.data") / "ieee69"
    buses = pd.read_csv(data / "buses.csv")
    branches = pd.read_csv(data / "branches.csv")
    net = pp.create_empty_network(name="IEEE 69-bus (Baran & Wu)", sn_mva=1.0)
    for bus in buses["bus"]:
        pp.create_bus(net, vn_kv=VN_KV, index=int(bus) - 1, name=str(bus))
    pp.create_ext_grid(net, bus=0, vm_pu=1.0, va_degree=0.0)
    for row in buses.itertuples():
        if row.p_kw or row.q_kvar:
            pp.create_load(net, bus=int(row.bus) - 1, p_mw=row.p_kw / 1000, q_mvar=row.q_kvar / 1000)
    for row in branches.itertuples():
        pp.create_line_from_parameters(
            net, from_bus=int(row.from_bus) - 1, to_bus=int(row.to_bus) - 1, length_km=1.0,
            r_ohm_per_km=row.r_ohm, x_ohm_per_km=row.x_ohm, c_nf_per_km=0.0, max_i_ka=99999.0,
            in_service=bool(row.in_service),
        )
    return net
