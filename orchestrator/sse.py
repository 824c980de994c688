from collections.abc import AsyncIterator

from django.http import StreamingHttpResponse


def event_stream_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    """A server-sent-events response that reaches the browser event by event: not cached, and not buffered by
    a proxy such as nginx (we use no GZip middleware, which would buffer it too)."""
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
