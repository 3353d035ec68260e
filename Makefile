# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both bootstrap .venv with uv from the committed uv.lock.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.synced
DEMO_DIR ?= .paynudge/demo
DEMO_CUSTOMERS ?= 8000
DEMO_MONTHS ?= 18
AB_CUSTOMERS ?= 2000
AB_MONTHS ?= 6
DISPATCH_CUSTOMERS ?= 500
MONITOR_SINCE ?= 2025-05-01

.PHONY: venv demo demo-data demo-models demo-policy demo-serving demo-dispatch demo-reports test lint format bench clean

$(STAMP): pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv sync --frozen --all-groups
	@touch $(STAMP)

venv: $(STAMP)

# The whole platform on the embedded defaults: data, features, models, policy, the live
# service, a simulated month of the dispatcher against the static ladder, and the reports.
demo: demo-data demo-models demo-policy demo-serving demo-dispatch demo-reports

demo-data: $(STAMP)
	$(VENV)/bin/paynudge simulate --customers $(DEMO_CUSTOMERS) --months $(DEMO_MONTHS) --seed 7 --out $(DEMO_DIR)
	$(VENV)/bin/paynudge validate $(DEMO_DIR)
	$(VENV)/bin/paynudge features build --data $(DEMO_DIR)
	$(VENV)/bin/paynudge features materialize

# The three models on the demo datasets, registered (champions by the promotion rule).
demo-models: $(STAMP)
	$(VENV)/bin/paynudge train late_payment
	$(VENV)/bin/paynudge train churn
	$(VENV)/bin/paynudge train send_time --truth $(DEMO_DIR)
	$(VENV)/bin/paynudge models list

# The reminder policy learnt from the demo's logged decisions, then a simulated A/B on
# held-out customers against the biller's ladder, always-e-mail, uniform and the oracle.
demo-policy: $(STAMP)
	$(VENV)/bin/paynudge policy train --data $(DEMO_DIR)
	$(VENV)/bin/paynudge policy simulate --customers $(AB_CUSTOMERS) --months $(AB_MONTHS)

# The real decision service: started, asked for a few decisions with their reasons, stopped.
demo-serving: $(STAMP)
	$(VENV)/bin/paynudge serve --sample 5 --data $(DEMO_DIR)

# A simulated month through service, dispatcher and webhooks; KPIs next to the static ladder.
demo-dispatch: $(STAMP)
	$(VENV)/bin/paynudge dispatch simulate --months 1 --customers $(DISPATCH_CUSTOMERS) --seed 7

# The demo's last two months logged as decisions of the champion (no live traffic here), their
# drift check against its training data, SHAP reports, and the analysts' index page.
demo-reports: $(STAMP)
	$(VENV)/bin/paynudge monitor shadow --data $(DEMO_DIR) --since $(MONITOR_SINCE)
	$(VENV)/bin/paynudge monitor check --since $(MONITOR_SINCE)
	$(VENV)/bin/paynudge explain late_payment
	$(VENV)/bin/paynudge reports index

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_simulation.py
	$(VENV)/bin/python benchmarks/bench_features.py
	$(VENV)/bin/python benchmarks/bench_training.py
	$(VENV)/bin/python benchmarks/bench_policy.py

clean:
	rm -rf $(VENV) .paynudge .pytest_cache .ruff_cache .mypy_cache
