"""Speed mechanisms of the encoder that never change what is stored (beyond float rounding)."""
