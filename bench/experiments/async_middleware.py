"""An experiment, not a proposal to ship as is: the app's settings with every middleware async-capable, to
measure what Django's sync-to-async adaptation costs each request.

Two middlewares in MIDDLEWARE are sync-only (WhiteNoise 6 and core's ContentSecurityPolicyMiddleware). One
is enough for Django to run the whole chain in a thread per request and call async views back through
async_to_sync. Here the CSP middleware is replaced by an async-capable equivalent and WhiteNoise is left
out (static files are then not served: run with ONLY=overhead,concurrency,listing,fallback):

    DJANGO_SETTINGS_MODULE=bench.experiments.async_middleware python bench/run.py --only overhead"""

import secrets

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from core.middleware import POLICY
from orchestrator.settings import *  # noqa: F403
from orchestrator.settings import MIDDLEWARE as _BASE

MIDDLEWARE = [
    "bench.experiments.async_middleware.AsyncContentSecurityPolicyMiddleware"
    if m == "core.middleware.ContentSecurityPolicyMiddleware"
    else m
    for m in _BASE
    if m != "whitenoise.middleware.WhiteNoiseMiddleware"
]


class AsyncContentSecurityPolicyMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):  # noqa: ANN001
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _finish(self, request, response):  # noqa: ANN001
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", POLICY.format(nonce=request.csp_nonce))
        return response

    def __call__(self, request):  # noqa: ANN001
        request.csp_nonce = secrets.token_urlsafe(16)
        if self.is_async:
            return self._acall(request)
        return self._finish(request, self.get_response(request))

    async def _acall(self, request):  # noqa: ANN001
        return self._finish(request, await self.get_response(request))
