"""Training: the two-stage trainer (train.py) over one epoch driver (stages.py), its
schedule, compilation, profiling and logs, and the reproduction queue of experiments/run_queue.py."""
