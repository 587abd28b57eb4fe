"""The web UI's files, served by the gateway at ``/ui/`` (``gateway.app``).

Plain HTML, CSS and JavaScript shipped as package data: no CDN, no build
step, nothing fetched at run time. ``app.js`` talks only to the gateway's
REST routes, follows ``/v1/events`` for live updates and asks for a bearer
token when the manager runs with ACLs.
"""
