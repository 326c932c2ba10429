"""vaezoo.train: the training loop and recipes (train/recipes/*.toml)."""
