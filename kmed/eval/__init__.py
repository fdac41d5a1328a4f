"""kmed.eval."""
