"""kmed.agent."""
