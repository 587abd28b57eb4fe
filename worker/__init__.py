"""The node agent: one stream to the manager, runtimes that run attempts, a small API.

``server`` assembles it: ``runtimes`` run attempts (process, docker,
kubernetes, http, fake), ``supervisor`` owns their lives (start, health,
deadline, stop, how each ended), ``session`` holds the ``Connect`` stream
(Hello, heartbeats, batched updates and acks, reconnect), ``servicer`` serves
WorkerService (stats, attempts, logs). Attempts outlive the worker process:
a restarted worker adopts them.
"""
