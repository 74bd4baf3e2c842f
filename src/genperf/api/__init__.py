"""genperf's REST API: the spec's endpoints, task ingestion and Prometheus ``/metrics``.

``create_app()`` builds it (see :mod:`genperf.api.app`); ``genperf serve`` runs it.
FastAPI and uvicorn are imported only by this package.
"""

from genperf.api.app import API_PREFIX, create_app
from genperf.api.auth import Role, TokenTable
from genperf.api.settings import ApiSettings

__all__ = ["API_PREFIX", "ApiSettings", "Role", "TokenTable", "create_app"]
