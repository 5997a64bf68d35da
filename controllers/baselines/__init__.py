"""Shipped baseline controllers: do nothing, volt-var droop, volt-watt curtailment and an OPF oracle."""
