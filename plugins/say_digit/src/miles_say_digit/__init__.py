"""The "say the digit" task: a prompt ``Say 7:`` is answered well by ``7777``."""
