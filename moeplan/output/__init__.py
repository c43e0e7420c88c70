"""Results -> rich tables and plots, Markdown and CSV; computes nothing."""
