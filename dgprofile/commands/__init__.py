"""Click commands, one module each; registered lazily in dgprofile.cli.COMMANDS."""
