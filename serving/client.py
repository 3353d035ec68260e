"""A small typed client of the decision service, for the dispatcher (httpx, over HTTP only).

Timeouts on every call; connection errors (service restarting, not up yet) are retried with a
growing pause. HTTP errors are not retried: a 4xx is the caller's to fix and raises
:class:`ServiceError` with the service's message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Self, TypeVar

import httpx
from pydantic import BaseModel

from paynudge.config import Settings, get_settings
from paynudge.errors import PayNudgeError
from serving.schemas import (
    DecideOutput,
    Decision,
    DecisionRequest,
    Feedback,
    FeedbackOutput,
    Metadata,
    ScoreOutput,
    Scores,
)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRIES = 3
RETRY_PAUSE_SECONDS = 0.5

Output = TypeVar("Output", bound=BaseModel)


class ServiceError(PayNudgeError):
    """The service refused a request (4xx/5xx) or could not be reached."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class DecisionClient:
    """``decide``, ``score``, ``feedback``, ``metadata``, ``reload`` and ``ready``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> DecisionClient:
        settings = settings or get_settings()
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(settings.serving_url, token)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, json=body)
                break
            except (httpx.ConnectError, httpx.RemoteProtocolError) as error:
                if attempt == self.retries:
                    raise ServiceError(
                        f"{method} {path}: cannot reach the service ({error})"
                    ) from None
                time.sleep(RETRY_PAUSE_SECONDS * 2**attempt)
            except httpx.TransportError as error:  # a timeout: the request may have been seen
                raise ServiceError(
                    f"{method} {path}: no answer from the service ({error})"
                ) from None
        if response.status_code >= 400:
            raise ServiceError(
                f"{method} {path}: {response.status_code} {response.text[:500]}",
                response.status_code,
            )
        return response

    def _post(self, path: str, body: dict, output: type[Output]) -> Output:
        return output.model_validate_json(self._call("POST", path, body).content)

    def decide(
        self, requests: Sequence[DecisionRequest], *, explain: bool = False, seed: int | None = None
    ) -> list[Decision]:
        body = {
            "requests": [r.model_dump(mode="json") for r in requests],
            "explain": explain,
            "seed": seed,
        }
        return self._post("/decide", body, DecideOutput).decisions

    def score(self, requests: Sequence[DecisionRequest], *, explain: bool = False) -> list[Scores]:
        body = {"requests": [r.model_dump(mode="json") for r in requests], "explain": explain}
        return self._post("/score", body, ScoreOutput).scores

    def feedback(self, reports: Sequence[Feedback]) -> FeedbackOutput:
        body = {"feedback": [r.model_dump(mode="json", exclude_none=True) for r in reports]}
        return self._post("/feedback", body, FeedbackOutput)

    def metadata(self) -> Metadata:
        return Metadata.model_validate_json(self._call("GET", "/metadata").content)

    def reload(self, alias: str = "champion") -> Metadata:
        return self._post("/admin/reload", {"alias": alias}, Metadata)

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False
