"""Compatibility with Iter8: its tutorials' chart values, built and run here (issue 14)."""
