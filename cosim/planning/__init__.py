"""DG planning: siting and sizing (exact enumeration, NSGA-II, DE, DQN) and hosting capacity, on the grid's fast engines.

Physics only: no mosaik, pymodbus or hil. `cosim plan` (cosim/commands/plan.py) is the command line.
"""
