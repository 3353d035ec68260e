"""Point-in-time feature pipelines and the Feast feature store.

Feature definitions are written once as Ibis expressions (:mod:`features.families`) and run on
DuckDB by default. A feature for a decision at cutoff time *t* uses only events strictly before
*t*. The same definitions build the training datasets (:mod:`features.datasets`) and the
customer profiles that Feast serves online (:mod:`features.profiles`).
"""
