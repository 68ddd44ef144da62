"""Training: the two-stage trainer (train.py) over one epoch driver (stages.py), its
schedule, compilation, profiling and logs, and ``lcreg reproduce``'s run queues."""
