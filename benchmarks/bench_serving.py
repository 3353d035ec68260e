"""Decision service latency and throughput, against the HTTP floor of the same server.

Starts ``bentoml serve`` on a free loopback port for a home whose registry holds champions of
the three models and the policy and whose online store holds profiles (``make demo`` plus
``make demo-models`` and ``paynudge policy train``), then measures in the same run: the trivial
``/echo`` endpoint alone, then the echo (the HTTP floor) and ``/decide`` for one request called
in turn (so a shared machine's slow moments, and the CPU caches a decision leaves behind, fall
on both alike), and ``/decide`` for batches of
1,000 with and without explanations (profiles cached after the warm-up calls; the first batch
of other customers, read from the online store, is printed apart). Prints p50/p99 latencies,
decisions per second and the ratios to the goals (single p50 within 2x the floor, p99 under
15 ms; a 1,000-decision batch under 200 ms; explanations under 2 ms more per decision). Every
loop is bounded.

    .venv/bin/python benchmarks/bench_serving.py --home .paynudge
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from features.catalog import PROFILE_FILE
from paynudge.config import Settings

STAGES = ("pre_due", "due", "overdue_3", "overdue_10", "overdue_30")
ZONES = ("Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "UTC")
ROOT = Path(__file__).resolve().parents[1]


def requests_for(customers: np.ndarray, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    now = pd.Timestamp("2025-07-01T09:00:00Z")
    return [
        {
            "customer_id": str(rng.choice(customers)),
            "invoice_id": f"bench-{seed}-{i}",
            "amount": round(float(rng.gamma(2.0, 40.0)), 2),
            "issue_date": "2025-06-20",
            "due_date": "2025-07-04",
            "stage": STAGES[i % len(STAGES)],
            "now": (now + pd.Timedelta(minutes=int(rng.integers(0, 7200)))).isoformat(),
            "timezone": ZONES[i % len(ZONES)],
        }
        for i in range(n)
    ]


def timed(client: httpx.Client, path: str, body: dict, repeats: int) -> np.ndarray:
    """Milliseconds of ``repeats`` calls (after two warm-up calls)."""
    return interleaved(client, [(path, body)], repeats)[0]


def interleaved(client: httpx.Client, calls: list[tuple[str, dict]], repeats: int) -> list:
    """Milliseconds of ``repeats`` rounds of ``calls`` (path, body) made in turn, one array per
    call: a shared machine's slow and fast moments fall on every call alike, so their ratio
    holds where back-to-back series drift apart (after 20 warm-up rounds)."""
    for _ in range(20):
        for path, body in calls:
            client.post(path, json=body).raise_for_status()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for spent, (path, body) in zip(times, calls, strict=True):
            start = time.perf_counter()
            client.post(path, json=body).raise_for_status()
            spent.append((time.perf_counter() - start) * 1000)
    return [np.array(spent) for spent in times]


def start_service(home: Path, token: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PAYNUDGE_HOME": str(home.absolute()), "PAYNUDGE_API_TOKEN": token}
    bentoml = Path(sys.executable).with_name("bentoml")
    process = subprocess.Popen(
        [str(bentoml), "serve", "serving.service:PayNudgeDecisions", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    os.killpg(process.pid, 15)
    raise SystemExit("the service did not start: are the champions and profiles there?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Settings().home)
    parser.add_argument("--single", type=int, default=500, help="single-request rounds")
    parser.add_argument("--batches", type=int, default=10, help="1,000-decision batches")
    args = parser.parse_args()
    settings = Settings(home=args.home)
    customers = pd.read_parquet(
        settings.features_directory / PROFILE_FILE, columns=["customer_id"]
    )["customer_id"].to_numpy()
    token = secrets.token_urlsafe(24)
    process, url = start_service(args.home, token)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            ping = {"message": "ping"}
            alone = timed(client, "/echo", ping, args.single)
            one = {"requests": requests_for(customers, 1, 0), "seed": 1}
            echo, single = interleaved(client, [("/echo", ping), ("/decide", one)], args.single)
            cold_batch = {"requests": requests_for(customers, 1000, 2), "seed": 1}
            started = time.perf_counter()
            client.post("/decide", json=cold_batch).raise_for_status()
            cold = (time.perf_counter() - started) * 1000
            batch = {"requests": requests_for(customers, 1000, 1), "seed": 1}
            batched = timed(client, "/decide", batch, args.batches)
            explained = timed(client, "/decide", {**batch, "explain": True}, args.batches)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
    report(alone, echo, single, batched, explained)
    print(f"first batch of 1,000 (profiles not yet cached, read from Feast): {cold:.0f} ms")


def report(
    alone: np.ndarray,
    echo: np.ndarray,
    single: np.ndarray,
    batched: np.ndarray,
    explained: np.ndarray,
) -> None:
    def p(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q))

    print(f"echo alone             p50 {p(alone, 50):7.2f} ms  p99 {p(alone, 99):7.2f} ms")
    print(f"echo (HTTP floor)      p50 {p(echo, 50):7.2f} ms  p99 {p(echo, 99):7.2f} ms"
          "  (in turn with /decide x1)")  # fmt: skip
    print(f"/decide x1             p50 {p(single, 50):7.2f} ms  p99 {p(single, 99):7.2f} ms"
          f"  max {single.max():7.2f} ms")  # fmt: skip
    print(f"/decide x1000          p50 {p(batched, 50):7.2f} ms  "
          f"({1000 / p(batched, 50) * 1000:,.0f} decisions/s)")  # fmt: skip
    print(f"/decide x1000 explain  p50 {p(explained, 50):7.2f} ms  "
          f"({1000 / p(explained, 50) * 1000:,.0f} decisions/s)")  # fmt: skip
    extra = (p(explained, 50) - p(batched, 50)) / 1000
    print(f"single p50 / floor p50: {p(single, 50) / p(echo, 50):.2f}x (goal <= 2x); "
          f"against echo alone: {p(single, 50) / p(alone, 50):.2f}x")  # fmt: skip
    print(f"single p99: {p(single, 99):.1f} ms (goal < 15 ms)")
    print(f"batch of 1,000: {p(batched, 50):.0f} ms (goal < 200 ms)")
    print(f"explanations: +{extra:.2f} ms per decision (goal < 2 ms)")


if __name__ == "__main__":
    main()
