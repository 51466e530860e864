"""Data pipeline: annotation readers -> samples -> frame indices -> decoded frames -> transforms -> batches."""
