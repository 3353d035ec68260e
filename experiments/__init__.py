"""Experiments: Optuna hyper-parameter studies whose best parameters ``paynudge train`` reads.

``experiments.tuning.tune`` runs a study (seeded TPE sampler, median pruning on LightGBM's
per-iteration validation log loss), logs every trial as a nested MLflow run under one parent run
in the model's experiment, and writes ``experiments/configs/<model>.yaml``.
"""
