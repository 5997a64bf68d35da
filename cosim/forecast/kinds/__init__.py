"""One module per forecast kind, each setting `FORECASTER` (see `cosim.forecast`)."""
