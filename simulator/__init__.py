"""A stand-in for the pilot communities' vendor systems: HTTP APIs, file drops, faults, ground truth."""
