"""What the model and the hardware are on paper: the model's shapes and the bytes and FLOPs of each
pass, and the datasheet table. Nothing here is measured or assumes an engine."""
