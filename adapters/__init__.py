"""Models and their LoRA adapters: the dialogue model, its training and evaluation."""
