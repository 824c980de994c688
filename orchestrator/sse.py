from collections.abc import AsyncIterator

from django.http import StreamingHttpResponse

# What every event stream is sent with, by the Django views and by the gateway's raw-ASGI path alike: not
# cached, and not buffered by a proxy such as nginx.
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event_stream_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    """A server-sent-events response that reaches the browser event by event: not cached, and not buffered by
    a proxy such as nginx (we use no GZip middleware, which would buffer it too)."""
    response = StreamingHttpResponse(body)
    for name, value in SSE_HEADERS.items():
        response[name] = value
    return response
