import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

django_application = get_asgi_application()

# After Django is set up (the gateway's modules import models).
from gateway.asgi import GatewayHotPath  # noqa: E402

# POST /v1/chat/completions skips Django's request cycle (gateway/asgi.py); everything else is Django's.
application = GatewayHotPath(django_application)
