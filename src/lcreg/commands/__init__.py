"""The after-training commands on a model file: eval, analyze, predict, report, export
(``trained.py`` loads the model and the data to evaluate it on)."""
