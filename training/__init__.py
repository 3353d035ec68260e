"""One trainer for tabular LightGBM models: specs, splits, calibrated estimator, evaluation, MLflow.

The modelling core (:mod:`training.specs`, :mod:`training.splits`, :mod:`training.model`,
:mod:`training.calibration`, :mod:`training.evaluation`, :mod:`training.baselines`,
:mod:`training.tabular`) is pure functions of data; tracking and the registry sit on top of it.
"""
