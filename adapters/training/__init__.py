"""Training: the dialogue model's LoRA adapter and its examples, and the tuned encoders."""
