"""kmed."""
