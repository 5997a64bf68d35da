"""Deep RL for inverter setpoints: a fast gymnasium environment, SB3 training and a torch-only policy runtime."""
