"""`dgprofile verify`: run the real models on the workload prompts and set what users feel beside the prediction."""
