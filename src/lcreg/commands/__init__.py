"""The after-training commands: on a model file eval, analyze, predict, report, export
(``trained.py`` loads the model and the data to evaluate it on); on run folders the
``lcreg runs`` table (``runs_table.py``) and the paper tables of ``lcreg reproduce``
(``paper_tables.py``, beside the paper's numbers in ``paper_numbers.py``)."""
