"""Controllers: the plug-in interface, classic baselines and deep-RL policies."""
