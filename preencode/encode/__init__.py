"""Encoding: ``engine/`` runs a job (Lightning predict over ranks and workers), ``fast/`` holds the speed
mechanisms that never change results, ``full_length/`` encodes whole files in chunks; ``posterior.py`` turns
encoder output into what is stored. See docs/architecture.md."""
