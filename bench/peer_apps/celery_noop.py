"""The no-op workload through Celery 5 (Redis broker and result backend, threads pool).

Run by the peer virtualenv: ``celery -A celery_noop worker ...`` serves it and
``python celery_noop.py TASKS RTTS`` measures it, printing one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
import os
import sys
import time

from celery import Celery

app = Celery("corralbench", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.update(task_ignore_result=False, result_expires=600, worker_prefetch_multiplier=64)


@app.task(name="corralbench.noop")
def noop() -> None:
    return None


def main() -> None:
    tasks, rtts = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(20):  # warm-up: connections, pubsub, the worker's first fetch
        noop.delay().get(timeout=30)
    started = time.perf_counter()
    results = [noop.delay() for _ in range(tasks)]
    for result in results:
        result.get(timeout=120)
    throughput = tasks / (time.perf_counter() - started)
    samples = []
    for _ in range(rtts):
        t0 = time.perf_counter()
        noop.delay().get(timeout=30)
        samples.append(time.perf_counter() - t0)
    print("RESULT " + json.dumps({"tasks_per_s": throughput, "rtt_s": samples}), flush=True)


if __name__ == "__main__":
    main()
