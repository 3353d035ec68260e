"""The decision service in-process: an httpx transport answering ``/decide`` and ``/feedback``
with :func:`serving.decision.decide_batch` and the service's own decision log.

Starting BentoML takes seconds; simulations and tests talk to the same decision function and
the same log through this transport instead, still over the HTTP contract of
:mod:`serving.schemas` and the dispatcher's :class:`serving.client.DecisionClient`. With
``ladder=True`` the learned policy is replaced by the static escalation ladder
(:func:`reminder_policy.baselines.ladder`) inside the same guardrails and send-time model: the
baseline the simulated cycles compare with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import httpx
import numpy as np

from paynudge.errors import PayNudgeError
from reminder_policy.baselines import ladder
from serving.decision import Components, decide_batch
from serving.decision_log import DecisionLog
from serving.schemas import DecideInput, DecideOutput, FeedbackInput, FeedbackOutput

LADDER_VERSION = "static_ladder"


@dataclasses.dataclass(frozen=True)
class LadderPolicy:
    """The static ladder with the bandit's interface, for one batch of stages."""

    stages: np.ndarray

    def rewards_and_distribution(
        self, context: np.ndarray, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """No reward estimates (zeros) and the ladder's choice, as the bandit's method."""
        return np.zeros(allowed.shape), ladder(self.stages, allowed)


class LocalDecisionService(httpx.BaseTransport):
    """``POST /decide`` and ``POST /feedback`` answered in-process (``log``: where to log)."""

    def __init__(self, components: Components, log: DecisionLog, ladder: bool = False) -> None:
        self.components = components
        self.log = log
        self.ladder = ladder

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        try:
            if request.url.path == "/decide":
                return self._decide(request.content)
            if request.url.path == "/feedback":
                body = FeedbackInput.model_validate_json(request.content)
                accepted, duplicates = self.log.append_feedback(body.feedback)
                answer = FeedbackOutput(accepted=accepted, duplicates=duplicates)
                return httpx.Response(200, content=answer.model_dump_json())
        except (PayNudgeError, ValueError) as error:
            return httpx.Response(400, json={"error": str(error)})
        return httpx.Response(404, json={"error": f"no route {request.url.path}"})

    def _decide(self, content: bytes) -> httpx.Response:
        body = DecideInput.model_validate_json(content)
        components = self._components(body.requests)
        decided = decide_batch(body.requests, components, explain=body.explain, seed=body.seed)
        self.log.append_decisions(body.requests, decided.decisions, decided.features)
        answer = DecideOutput(decisions=decided.decisions)
        return httpx.Response(200, content=answer.model_dump_json())

    def _components(self, requests: Sequence[object]) -> Components:
        if not self.ladder:
            return self.components
        stages = np.array([r.stage for r in requests], dtype=object)  # type: ignore[attr-defined,type-var]
        return dataclasses.replace(
            self.components, bandit=LadderPolicy(stages), policy_version=LADDER_VERSION
        )
