"""encode package."""
