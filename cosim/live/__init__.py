"""Live view of a running co-simulation: `cosim run SCENARIO --live` serves a page on 127.0.0.1 with the
feeder's one-line diagram, device states, guard interventions and recent key signals, updated every step."""

from cosim.live.feed import LiveFeed
from cosim.live.server import LiveView

__all__ = ["LiveFeed", "LiveView"]
