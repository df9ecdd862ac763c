#!/usr/bin/env python3
"""FAISS's OPQ quality and training time for `npm run bench:opq`.

For each factory string (e.g. OPQ16,PQ16 or OPQ16_768,PQ16) trains on the base
file --passes times, then searches the queries exhaustively (ADC, no re-rank)
and prints one JSON line: factory, recall@k against --gt, the training wall
and CPU seconds (all threads) of every pass, and how FAISS runs (threads, version, compile options).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import THREAD_VARIABLES, read_vecs  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--gt", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--factory", action="append", required=True)
    a = p.parse_args()
    faiss.omp_set_num_threads(a.threads)
    xb = read_vecs(a.base, np.float32)
    xq = read_vecs(a.queries, np.float32)
    gt = read_vecs(a.gt, np.int32)
    info = {
        "threads": faiss.omp_get_max_threads(),
        "version": faiss.__version__,
        "compileOptions": faiss.get_compile_options(),
        "env": {v: os.environ.get(v, "") for v in THREAD_VARIABLES},
    }
    for factory in a.factory:
        seconds, cpu, recalls = [], [], []
        for _ in range(a.passes):
            index = faiss.index_factory(xb.shape[1], factory, faiss.METRIC_L2)
            started, started_cpu = time.perf_counter(), time.process_time()
            index.train(xb)
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            index.add(xb)
            _, ids = index.search(xq, a.k)
            recalls.append(sum(len(set(ids[q, : a.k]) & set(gt[q, : a.k])) for q in range(xq.shape[0])) / (xq.shape[0] * a.k))
        print(json.dumps({"factory": factory, "recall": float(np.median(recalls)), "trainSeconds": seconds, "trainCpuSeconds": cpu, "faiss": info}), flush=True)


if __name__ == "__main__":
    main()
