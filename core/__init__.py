"""Facts every part of the platform shares; imports nothing of the project (see ../shared/design.md)."""
