"""A look at the live service: start it, ask for a few decisions with their reasons, stop it.

``paynudge serve --sample N --data DIR`` (run by ``make demo``) starts the real BentoML service
on a free loopback port with a one-off random token, waits until it is ready, sends ``N`` open
invoices of the data set's last billing month at their due date through
:class:`serving.client.DecisionClient` with ``explain: true``, and stops the service.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from paynudge.config import Settings
from paynudge.errors import PayNudgeError
from serving.client import DecisionClient
from serving.schemas import Decision, DecisionRequest

SERVICE = "serving.service:PayNudgeDecisions"
READY_TIMEOUT_SECONDS = 300.0
READY_POLL_SECONDS = 1.0
SAMPLE_STAGE = "due"
SAMPLE_HOUR_UTC = 7
"""The sampled decisions are asked at 07:00 UTC on the due date: before 08:00 local in Europe
(quiet hours), so the answers also show send times moved out of the night."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(host: str, port: int) -> list[str]:
    """``bentoml serve`` of the decision service, run from this installation's Python."""
    working_dir = Path(__file__).resolve().parents[1]
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host,
            "--port", str(port), "--working-dir", str(working_dir)]  # fmt: skip


@contextmanager
def running_service(settings: Settings) -> Iterator[DecisionClient]:
    """The service on a free loopback port with a random token; a client of it; then stopped."""
    port, token = free_port(), secrets.token_urlsafe(24)
    env = {**os.environ, "PAYNUDGE_HOME": str(settings.home), "PAYNUDGE_API_TOKEN": token}
    process = subprocess.Popen(
        serve_command("127.0.0.1", port), env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        with DecisionClient(f"http://127.0.0.1:{port}", token) as client:
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while not client.ready():
                if process.poll() is not None:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise PayNudgeError(f"the service exited while starting:\n{stderr[-2000:]}")
                if time.monotonic() > deadline:
                    raise PayNudgeError(f"the service was not ready in {READY_TIMEOUT_SECONDS} s")
                time.sleep(READY_POLL_SECONDS)
            yield client
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def sample_requests(tables: dict[str, pd.DataFrame], n: int, seed: int) -> list[DecisionRequest]:
    """``n`` invoices of the last billing month, asked about on their due date."""
    invoices = tables["invoices"]
    last = invoices[invoices["issue_date"] == invoices["issue_date"].max()]
    if last.empty:
        raise PayNudgeError("the data set has no invoices to sample")
    rows = last.sample(n=min(n, len(last)), random_state=np.random.default_rng(seed))
    zones = tables["customers"].set_index("customer_id")["timezone"]
    return [
        DecisionRequest(
            customer_id=str(row.customer_id),
            invoice_id=str(row.invoice_id),
            amount=float(row.amount),
            issue_date=pd.Timestamp(row.issue_date).date(),
            due_date=pd.Timestamp(row.due_date).date(),
            stage=SAMPLE_STAGE,
            now=pd.Timestamp(row.due_date, tz="UTC") + pd.Timedelta(hours=SAMPLE_HOUR_UTC),
            timezone=str(zones[row.customer_id]),
        )
        for row in rows.itertuples()  # a handful of rows for display, not a pipeline
    ]


def sample_decisions(
    settings: Settings, tables: dict[str, pd.DataFrame], n: int, seed: int
) -> tuple[list[DecisionRequest], list[Decision]]:
    """Start the service, decide ``n`` sampled invoices with explanations, stop it."""
    requests = sample_requests(tables, n, seed)
    with running_service(settings) as client:
        return requests, client.decide(requests, explain=True, seed=seed)
