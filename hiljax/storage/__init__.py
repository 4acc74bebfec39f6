"""What the learner keeps on disk and in memory, numpy only: the replay buffer, checksummed
array files, and whole-or-nothing file writes."""
