"""Inspection tools for a pre-encoded output tree: ``inspect`` (statistics), ``verify`` (integrity), ``decode``.

Each tool has a command-line entry point taking an argv list and returning an exit code:
:func:`preencode.tools.inspect.inspect_main`, :func:`preencode.tools.verify.verify_main`,
:func:`preencode.tools.to_audio.decode_main`.
"""
