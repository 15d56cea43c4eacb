"""Hardware probes, measured limits and decode micro-benchmarks (installed as dgprofile.probes)."""
