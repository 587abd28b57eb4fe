"""Corral's benchmarks: scripts that print figures and write JSON, never tests.

Each case is a module with ``async def run(quick: bool) -> dict`` returning
``{"name", "params", "figures", "peer_figures", "ratios", "goal", "met"}`` (or
``"error"`` with an honest reason), and a ``__main__`` block that runs it alone
with its own parameters. ``python -m bench`` runs every case, each in its own
process so a hang or crash costs only that case, prints one table and writes
``bench/results/latest.json``.
"""
