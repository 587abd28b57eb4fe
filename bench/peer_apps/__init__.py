"""Programs run by the peer virtualenv (bench/peers/venv), not by Corral's: Celery and Ray."""
