"""full_length package."""
