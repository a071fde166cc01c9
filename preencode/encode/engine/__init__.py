"""An encode job: options, validation, the Lightning data and predict modules, writing, progress, summary."""
