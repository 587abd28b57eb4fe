"""The no-op workload through Ray (local, 2 CPUs); prints one ``RESULT {json}`` line.

Run by the peer virtualenv inside a private network namespace that has only
loopback (Ray binds to the machine's external address otherwise), with HOME
and Ray's temp dir in a scratch folder.
"""

from __future__ import annotations

import json
import os
import sys
import time

import ray


@ray.remote
def noop() -> None:
    return None


def main() -> None:
    tasks, rtts = int(sys.argv[1]), int(sys.argv[2])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=os.environ["RAY_TMPDIR"],
        logging_level="WARNING",
        log_to_driver=False,
    )
    ray.get([noop.remote() for _ in range(50)])  # warm-up: worker processes started
    started = time.perf_counter()
    ray.get([noop.remote() for _ in range(tasks)])
    throughput = tasks / (time.perf_counter() - started)
    samples = []
    for _ in range(rtts):
        t0 = time.perf_counter()
        ray.get(noop.remote())
        samples.append(time.perf_counter() - t0)
    ray.shutdown()
    print("RESULT " + json.dumps({"tasks_per_s": throughput, "rtt_s": samples}), flush=True)


if __name__ == "__main__":
    main()
