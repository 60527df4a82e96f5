"""miles-filters-dapo."""
