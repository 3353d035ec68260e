"""SIGKILL the dispatcher at random moments of a 2,000-invoice cycle, again and again.

The real decision service (``bentoml serve`` on a small served world, as the serving tests build
it) decides; e-mail goes to a real SMTP server (aiosmtpd), SMS/push/call to a real HTTP provider
that dedups by idempotency key, letters to PDF. Dispatcher processes are forked from a server
that has the code imported (multiprocessing's forkserver: a fresh process per run without paying
the imports each time) and run ``paynudge dispatch run --once --now T``. At least 20 of them are
killed with SIGKILL at a random moment; each is restarted. At the end every due reminder was sent
exactly once or flagged for reconciliation: none twice, none missing.
"""

from __future__ import annotations

import collections
import importlib.util
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from dispatcher.database import open_database
from dispatcher.state import Invoice, Message, Reminder
from paynudge.config import Settings

N_INVOICES = 2_000
SERVED_CUSTOMERS = 400
MIN_KILLS = 20
KILL_AFTER_PROGRESS = (5, 80)
"""A run is killed once this many (random) more reminders or finished messages are recorded..."""
KILL_JITTER_SECONDS = 0.3
"""... plus a random pause up to this: mid-decision, mid-commit, mid-send, mid-recovery."""
MAX_RUNS = 400
POLL_SECONDS = 0.02
START_TIMEOUT_SECONDS = 240
T = pd.Timestamp("2025-07-10 12:00", tz="UTC")
PHASES = (T, T + pd.Timedelta(days=2))
TOKEN = "crash-test-token-0123"
ROOT = Path(__file__).resolve().parents[2]


def _serving_helpers() -> ModuleType:
    """The serving tests' world builders (fit, register), loaded from their conftest file."""
    spec = importlib.util.spec_from_file_location(
        "serving_world_helpers", ROOT / "tests" / "serving" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pd.DataFrame]]:
    """The decision service on a small served world: its URL and the world's customers."""
    from features.datasets import build_datasets
    from features.profiles import build_profiles
    from features.store import materialize
    from simulation.world import make_config, simulate_world
    from training.specs import SPECS

    helpers = _serving_helpers()
    world = simulate_world(make_config(n_customers=SERVED_CUSTOMERS, n_months=6, seed=17))
    settings = Settings(home=tmp_path_factory.mktemp("served_home"))
    features_dir = settings.features_directory
    build_datasets(world.tables, features_dir)
    build_profiles(world.tables, features_dir)
    materialize(settings)
    for name in ("late_payment", "churn", "send_time"):
        estimator = helpers.fit_estimator(features_dir, name)
        example = pd.read_parquet(features_dir / f"{name}.parquet").head(5)
        helpers.register_champion(estimator, example[list(SPECS[name].features)], name, settings)
    helpers.register_policy(world, settings)
    port = free_port()
    env = {**os.environ, "PAYNUDGE_HOME": str(settings.home), "PAYNUDGE_API_TOKEN": TOKEN}
    bentoml = Path(sys.executable).with_name("bentoml")
    process = subprocess.Popen(
        [
            str(bentoml),
            "serve",
            "serving.service:PayNudgeDecisions",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the service exited: {process.stderr.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail("the service did not become ready in time")
        yield url, world.tables["customers"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


class Provider(BaseHTTPRequestHandler):
    """Counts every delivery attempt per idempotency key (a real provider delivers once)."""

    attempts: collections.Counter[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers["Idempotency-Key"]
        self.attempts[key] += 1
        self.send_response(202 if self.attempts[key] == 1 else 409)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Mailbox:
    def __init__(self) -> None:
        self.keys: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        self.keys[message["X-PayNudge-Idempotency-Key"]] += 1
        return "250 OK"


def crash_invoices(customers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """2,000 open invoices, each at the start of a stage at T (every stage represented)."""
    rng = np.random.default_rng(5)
    offsets = np.array([-5, 0, 3, 10, 30])
    stage = rng.integers(0, len(offsets), N_INVOICES)
    due = (T.normalize().tz_localize(None) - pd.to_timedelta(offsets[stage], unit="D")).normalize()
    owners = rng.choice(customers["customer_id"].to_numpy(), N_INVOICES)
    invoices = pd.DataFrame(
        {
            "invoice_id": [f"CR{i:06d}" for i in range(N_INVOICES)],
            "customer_id": owners,
            "issue_date": due - pd.Timedelta(days=14),
            "due_date": due,
            "amount": np.round(rng.gamma(2.0, 30.0, N_INVOICES) + 5, 2),
        }
    )
    paid = rng.random(N_INVOICES) < 0.1  # some pay during the cycle, after their decision
    payments = pd.DataFrame(
        {
            "payment_id": [f"CP{i:06d}" for i in np.flatnonzero(paid)],
            "invoice_id": invoices["invoice_id"][paid].to_numpy(),
            "customer_id": owners[paid],
            "amount": invoices["amount"][paid].to_numpy(),
            "paid_at": T + pd.to_timedelta(rng.integers(1, 36 * 60, paid.sum()), unit="min"),
            "method": "card",
        }
    )
    return {"customers": customers, "invoices": invoices, "payments": payments}


def _progress(database: Path) -> int:
    """Reminders planned plus messages finished (read-only, without taking the write lock)."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            planned = db.execute("SELECT count(*) FROM reminders").fetchone()[0]
            finished = db.execute(
                "SELECT count(*) FROM messages WHERE status IN ('sent', 'blocked', 'reconcile')"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # busy or not migrated yet: no progress seen
        return -1
    return int(planned) + int(finished)


def _killed_at_random(process: BaseProcess, database: Path, rng: random.Random) -> bool:
    """SIGKILL ``process`` after a random amount of progress and a random pause (if alive)."""
    target = max(_progress(database), 0) + rng.randint(*KILL_AFTER_PROGRESS)
    while process.is_alive():
        if _progress(database) >= target:
            time.sleep(rng.uniform(0, KILL_JITTER_SECONDS))
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
                process.join()
                return True
        time.sleep(POLL_SECONDS)
    process.join()
    return False


def _finished(settings: Settings, phase: pd.Timestamp) -> bool:
    sessions = open_database(settings)
    try:
        with sessions() as session:
            unplanned = session.scalar(
                select(func.count()).where(
                    Invoice.next_stage_at <= phase,
                    (Invoice.paid_at.is_(None)) | (Invoice.paid_at > phase),
                )
            )
            unfinished = session.scalar(
                select(func.count()).where(
                    Message.status.in_(("pending", "claimed", "sending")),
                    func.coalesce(Message.next_attempt_at, Message.send_at) <= phase,
                )
            )
        return unplanned == 0 and unfinished == 0
    finally:
        sessions.kw["bind"].dispose()


def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(
    served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatcher.loading import load_tables
    from dispatcher.stages import load_workflow
    from paynudge.cli import app

    url, customers = served
    provider = type("CrashProvider", (Provider,), {"attempts": collections.Counter()})
    http = ThreadingHTTPServer(("127.0.0.1", 0), provider)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    mailbox, smtp_port = Mailbox(), free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = {
        "PAYNUDGE_HOME": str(tmp_path / "home"),
        "PAYNUDGE_SERVING_URL": url,
        "PAYNUDGE_API_TOKEN": TOKEN,
        "PAYNUDGE_DISPATCHER__TRANSPORTS": '{"email": "smtp", "sms": "webhook", '
        '"push": "webhook", "call": "webhook", "letter": "pdf"}',
        "PAYNUDGE_DISPATCHER__SMTP__PORT": str(smtp_port),
        "PAYNUDGE_DISPATCHER__SMTP__TIMEOUT_SECONDS": "2",
        "PAYNUDGE_DISPATCHER__WEBHOOK__URL": f"http://127.0.0.1:{http.server_address[1]}/",
        "PAYNUDGE_DISPATCHER__WEBHOOK__SECRET": "w" * 32,
        "PAYNUDGE_DISPATCHER__WEBHOOK__TIMEOUT_SECONDS": "2",
        "PAYNUDGE_DISPATCHER__LEASE_SECONDS": "3",
        "PAYNUDGE_DISPATCHER__DECIDE_BATCH_SIZE": "100",
        "PAYNUDGE_DISPATCHER__SEND_BATCH_SIZE": "10",
        "PAYNUDGE_DISPATCHER__LINK_SECRET": "l" * 32,
        "PAYNUDGE_DISPATCHER__DECISION_SEED": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    sessions = open_database(settings)
    tables = crash_invoices(customers)
    workflow = load_workflow(settings)
    load_tables(sessions, {**tables, "payments": tables["payments"].iloc[:0]}, workflow)

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["paynudge.cli", "dispatcher.cycle", "dispatcher.outbox"])
    rng = random.Random(11)
    database = tmp_path / "home" / "dispatcher.db"
    kills = runs = 0
    started = time.monotonic()
    try:
        for phase in PHASES:
            if phase != PHASES[0]:  # the payment feed: paid after the decisions, before sending
                load_tables(sessions, tables, workflow)
            args = ["dispatch", "run", "--once", "--now", phase.isoformat()]
            while runs < MAX_RUNS:
                process = context.Process(
                    target=app, kwargs={"args": args, "prog_name": "paynudge"}
                )
                process.start()
                runs += 1
                if _killed_at_random(process, database, rng):
                    kills += 1
                    continue
                assert process.exitcode == 0, f"dispatcher run exited with {process.exitcode}"
                if _finished(settings, phase):
                    break
                time.sleep(1)  # leases of killed processes still running
    finally:
        smtp.stop()
        http.shutdown()
    elapsed = time.monotonic() - started
    sessions.kw["bind"].dispose()
    print(f"\n{runs} dispatcher runs, {kills} killed with SIGKILL, {elapsed:.1f} s")
    assert kills >= MIN_KILLS

    sessions = open_database(settings)
    with sessions() as session:
        reminders = pd.DataFrame(
            session.execute(select(Reminder.invoice_id, Reminder.stage, Reminder.outcome)).all(),
            columns=["invoice_id", "stage", "outcome"],
        )
        messages = pd.DataFrame(
            session.execute(
                select(
                    Message.message_id,
                    Message.invoice_id,
                    Message.transport,
                    Message.status,
                    Message.reasons,
                    Message.last_error,
                )
            ).all(),
            columns=["message_id", "invoice_id", "transport", "status", "reasons", "last_error"],
        )
        paid_before = set(session.scalars(select(Invoice.invoice_id).where(Invoice.paid_at <= T)))
    # none missing: every invoice open at T was planned once, every planned message finished
    assert len(reminders) == N_INVOICES - len(paid_before)
    assert not reminders.duplicated(["invoice_id", "stage"]).any()
    scheduled = reminders[reminders["outcome"] == "scheduled"]
    assert len(scheduled) > N_INVOICES // 4
    assert set(scheduled["invoice_id"]) == set(messages["invoice_id"])
    parked = messages.loc[messages["status"] == "parked", "last_error"]
    assert parked.empty, parked.value_counts().head(3).to_dict()
    assert set(messages["status"]) <= {"sent", "blocked", "reconcile"}
    blocked = messages[messages["status"] == "blocked"]
    assert (blocked["reasons"] != "").all()  # blocked by a rule at the send instant, named
    reasons = blocked["reasons"].str.split(",").explode().value_counts().to_dict()
    assert set(reasons) <= {"paid", "customer_daily_cap", "invoice_weekly_cap", "quiet_hours"}
    assert reasons.get("paid", 0) > 0  # payments after the decision stopped their reminders
    sent = messages[messages["status"] == "sent"]
    flagged = set(messages.loc[messages["status"] == "reconcile", "message_id"])
    # webhook: every sent message reached the provider under its key, nothing else did
    webhook = set(sent.loc[sent["transport"] == "webhook", "message_id"])
    assert set(provider.attempts) == webhook
    # SMTP (no idempotency): none twice; each sent one arrived; an unknown one is flagged
    assert max(mailbox.keys.values(), default=1) == 1
    email = set(sent.loc[sent["transport"] == "smtp", "message_id"])
    assert email <= set(mailbox.keys) <= email | flagged
    letters = {p.stem for p in (tmp_path / "home" / "outbox" / "letters").glob("*.pdf")}
    assert letters == set(sent.loc[sent["transport"] == "pdf", "message_id"])
    print(
        f"{len(sent)} sent ({len(webhook)} webhook, {len(email)} e-mail, {len(letters)} "
        f"letters), {len(blocked)} blocked {reasons}, {len(flagged)} flagged for reconciliation"
    )
