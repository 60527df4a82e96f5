"""Rewards: the dispatcher that scores samples, and the built-in reward functions of miles-core."""
