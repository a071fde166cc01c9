"""``--full-length``: whole files streamed in chunks with receptive-field margins, stitched exactly."""
