"""Routes of the projects Corral replaces, served as they document them.

One module per origin; each exposes ``routes() -> list[starlette.routing.BaseRoute]``.
Handlers reach the manager through ``request.app.state.channel`` (a
``grpc.aio.Channel`` opened in the app's lifespan) and never import
``manager`` or ``worker``.
"""

MODULES = (
    "gateway.compat.cube",  # Cube /tasks, gokube /task, /nodes, /stats
    "gateway.compat.jobs",  # the Kubernetes Job API: /, /jobs...
    "gateway.compat.cronjob",  # the .NET cron orchestrator: /api/cronjob/*
    "gateway.compat.environments",  # the environment orchestrator: /start, /stop, /health
)
