"""The speedup model: ceilings, pass times, engines and their calibration, memory fit, workloads and
the verdict. Plain arithmetic over records and specs; no hardware, no I/O beyond shipped data."""
