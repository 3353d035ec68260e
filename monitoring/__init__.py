"""Monitoring for analysts: Evidently drift and performance reports, SHAP reports, retraining.

Reference data is the champion's training data; current data is the feature rows of the
decisions the service logged in a window. Reports land under ``HOME/reports`` with an
``index.html`` an analyst opens without Python, and in MLflow against the model version.
"""
