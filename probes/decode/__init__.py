"""DiffusionGemma-style decode micro-benchmarks at the real model shapes."""
