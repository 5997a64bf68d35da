"""Disruptions and cyberattacks: the schedule, its targets, and the pure transforms the simulators apply."""
