"""Terminal text: the tables `check`, `bench`, `probe` and `predict` print."""
