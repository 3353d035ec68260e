"""The BentoML decision service: a thin HTTP layer over :mod:`serving.decision`.

Endpoints: ``POST /decide``, ``POST /score``, ``POST /feedback``, ``POST /admin/reload``,
``POST /echo`` (the HTTP floor for benchmarks), ``GET /metadata``; BentoML adds ``GET /healthz``,
``/livez``, ``/readyz`` and the Prometheus ``/metrics``. Everything but the health checks needs
``Authorization: Bearer <PAYNUDGE_API_TOKEN>`` (compared in constant time); without a token the
service refuses to start unless ``PAYNUDGE_DEV_MODE=1``. Start it with
``bentoml serve serving.service:PayNudgeDecisions``.
"""

from __future__ import annotations

import gc
import hmac
import json
import threading
from collections import Counter

import bentoml
from bentoml.exceptions import InvalidArgument
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from paynudge.config import Settings, get_settings
from paynudge.errors import ConfigError, PayNudgeError
from serving.decision import Components, decide_batch, score
from serving.decision_log import DecisionLog, default_log_path
from serving.error_bodies import ErrorBodies
from serving.loading import load_components
from serving.schemas import (
    DecideInput,
    DecideOutput,
    DecisionRequest,
    EchoInput,
    EchoOutput,
    Feedback,
    FeedbackInput,
    FeedbackOutput,
    Metadata,
    ReloadInput,
    ScoreInput,
    ScoreOutput,
)

DEV_MODE_ENV = "PAYNUDGE_DEV_MODE"
"""Set to 1 to serve without a token (on your own machine only): ``Settings.dev_mode``."""
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
"""Health checks: the only paths that need no token."""
REQUEST_TIMEOUT_SECONDS = 60

DECISIONS = bentoml.metrics.Counter(
    name="paynudge_decisions", documentation="Decisions made, by action", labelnames=["action"]
)
COLD_STARTS = bentoml.metrics.Counter(
    name="paynudge_cold_starts", documentation="Decisions for customers unknown to the store"
)


def required_token(settings: Settings) -> bytes | None:
    """The token every request must bear; None only in dev mode (else a ConfigError)."""
    if settings.api_token is not None and settings.api_token.get_secret_value():
        return settings.api_token.get_secret_value().encode()
    if settings.dev_mode:
        return None
    raise ConfigError(
        "no API token: set PAYNUDGE_API_TOKEN (or api_token in paynudge.toml), or start with "
        f"{DEV_MODE_ENV}=1 on a development machine"
    )


class BearerAuth:
    """ASGI middleware: a 401 unless the request bears the token (health checks excepted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.expected = None if (token := required_token(get_settings())) is None else token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.expected is None or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, b"Bearer " + self.expected):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": "missing or wrong bearer token in the Authorization header"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def settle_heap() -> None:
    """Collect the garbage, then exempt every object alive now from the cyclic collector.

    Loading the models, the policy, MLflow and Feast leaves ~500,000 long-lived objects; a full
    collection walks them all (~0.3 s on our machines) and stalls every request in flight. Frozen
    (``gc.freeze``), they are skipped, as Instagram does for its web servers. Earlier frozen
    objects are released first, so what a reload drops is collected and not kept for ever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def json_response(model: BaseModel) -> Response:
    """``model`` as the API's JSON response, serialised once in the handler's thread. Given the
    model, BentoML serialises it twice (``model_dump``, to test for text, then
    ``model_dump_json``), on the event loop: 3.5 ms of a 1,000-decision response."""
    return Response(model.model_dump_json(), media_type="application/json")


def metadata_of(components: Components) -> Metadata:
    return Metadata(
        alias=components.alias,
        models=components.model_versions,
        model_uris={name: model.uri for name, model in components.models.items()},
        policy_version=components.policy_version,
        policy_uri=components.policy_uri,
        policy_score_versions=dict(components.policy_spec.get("scores", {})),
        loaded_at=components.loaded_at.to_pydatetime(),
    )


async def metadata_view(_: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse(json.loads(metadata_of(service.components).model_dump_json()))


routes_app = Starlette(routes=[Route("/metadata", metadata_view, methods=["GET"])])


@bentoml.service(name="paynudge_decisions", traffic={"timeout": REQUEST_TIMEOUT_SECONDS})
class PayNudgeDecisions:
    """Loads the champion models and policy once; swaps them whole on reload."""

    def __init__(self) -> None:
        self.settings = get_settings()
        required_token(self.settings)
        self.components = load_components(self.settings)
        self.log = DecisionLog(default_log_path(self.settings))
        self._reload_lock = threading.Lock()
        settle_heap()

    def __is_ready__(self) -> bool:
        return self.components is not None

    @bentoml.api(route="/decide", input_spec=DecideInput, output_spec=DecideOutput)
    def decide(
        self, requests: list[DecisionRequest], explain: bool = False, seed: int | None = None
    ) -> Response:
        """One decision per request, in order; each is logged with its propensity."""
        components = self.components  # one consistent set for the whole batch
        try:
            decided = decide_batch(requests, components, explain=explain, seed=seed)
        except PayNudgeError as error:
            raise InvalidArgument(str(error)) from None
        self.log.append_decisions(requests, decided.decisions, decided.features)
        actions = Counter(decision.action for decision in decided.decisions)
        for action, count in actions.items():  # one metric update per action, not per decision
            DECISIONS.labels(action=action).inc(count)
        COLD_STARTS.inc(sum(decision.cold_start for decision in decided.decisions))
        return json_response(DecideOutput(decisions=decided.decisions))

    @bentoml.api(route="/score", input_spec=ScoreInput, output_spec=ScoreOutput)
    def score(self, requests: list[DecisionRequest], explain: bool = False) -> Response:
        """Late-payment and churn probabilities (and reasons, if asked) of a batch."""
        try:
            scores = score(requests, self.components, explain)
        except PayNudgeError as error:
            raise InvalidArgument(str(error)) from None
        return json_response(ScoreOutput(scores=scores))

    @bentoml.api(route="/feedback", input_spec=FeedbackInput, output_spec=FeedbackOutput)
    def feedback(self, feedback: list[Feedback]) -> Response:
        """Append outcome reports to the feedback log; repeated reports are ignored."""
        accepted, duplicates = self.log.append_feedback(feedback)
        return json_response(FeedbackOutput(accepted=accepted, duplicates=duplicates))

    @bentoml.api(route="/admin/reload", input_spec=ReloadInput, output_spec=Metadata)
    def reload(self, alias: str = "champion") -> Response:
        """Load the versions now holding ``alias`` and swap them in; in-flight requests finish
        on the set they started with."""
        with self._reload_lock:
            try:
                components = load_components(self.settings, alias)
            except PayNudgeError as error:
                raise InvalidArgument(str(error)) from None
            self.components = components
            settle_heap()  # requests still on the old set keep it frozen until the next reload
        return json_response(metadata_of(components))

    @bentoml.api(route="/echo", input_spec=EchoInput, output_spec=EchoOutput)
    def echo(self, message: str = "") -> Response:
        """Returns its input: the cost of the HTTP layer alone."""
        return json_response(EchoOutput(message=message))


# ``@bentoml.service`` returns a Service wrapping the class; its type stubs say the class.
PayNudgeDecisions.add_asgi_middleware(BearerAuth)  # type: ignore[attr-defined]
PayNudgeDecisions.add_asgi_middleware(ErrorBodies)  # type: ignore[attr-defined]
PayNudgeDecisions.mount_asgi_app(routes_app, path="/")  # type: ignore[attr-defined]
