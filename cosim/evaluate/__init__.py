"""`cosim evaluate`: controllers on held-out days x seeds, judged with confidence intervals and paired tests."""
