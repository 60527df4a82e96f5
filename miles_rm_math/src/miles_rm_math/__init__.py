"""miles-rm-math."""
