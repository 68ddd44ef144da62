"""What each ``lcreg`` command does, below the parsing in ``cli.py``: ``train`` (``training.py``:
its inputs checked before a run folder exists, the folder, the trainer; ``run_config.py``: the
config a command line asks for); the after-training commands on a model file eval, analyze,
predict, report, export (``trained.py`` loads the model and the data to evaluate it on); on run
folders the ``lcreg runs`` table (``runs_table.py``). The paper's reproduction (its tables,
numbers and queue) lives beside the package, in ``experiments/``."""
