"""Runtime plumbing shared by training and the after-training commands: devices, precision
and seeds (environment), torchrun process groups (distributed), checkpoint files."""
