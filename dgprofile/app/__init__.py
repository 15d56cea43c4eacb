"""The application layer: runs probes and benchmarks, predicts, and builds result files for the CLI."""
