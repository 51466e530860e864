"""Registered 3D models (SlowOnly, SlowFast) and multi-pathway multi-task networks."""
