"""The do-nothing baseline: DERs inject all available power at unity power factor."""

from __future__ import annotations

from typing import Mapping

from controllers.base import Controller


class DoNothing(Controller):
    """Issues no setpoints, so every DER stays at its default (no limit, zero reactive power)."""

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        return {}


CONTROLLER = DoNothing
