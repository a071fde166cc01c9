"""Inspection tools for a pre-encoded output tree: ``inspect`` (statistics), ``verify`` (integrity), ``decode``.

Their subcommands (flags and a few lines over these modules) are in :mod:`preencode.tools.commands`.
"""
