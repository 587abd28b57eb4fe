"""The REST gateway: HTTP/JSON in front of the manager's gRPC API.

It holds no state and makes no decisions; every request becomes at most one
gRPC call on one shared channel. ``app`` assembles the Starlette app;
``bindings`` reads the ``google.api.http`` annotations of the protos and
``translation`` serves them as canonical routes (``messages`` binds path,
query and JSON to messages, ``streaming`` serves server streams as text, SSE
or NDJSON); ``upstream`` makes the calls (metadata, deadlines, a quick 503)
and ``errors`` maps gRPC status to HTTP. ``compat`` serves the routes of the
projects Corral replaces; ``openapi`` describes them all; ``server`` runs it.
"""
