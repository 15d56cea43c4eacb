"""Fakes at the hardware seams (NVML, macOS commands, CPU/sysfs), built from real outputs where we have them."""
