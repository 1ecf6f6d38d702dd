"""Training code for citywatch's own models (needs PyTorch; not imported at run time)."""
