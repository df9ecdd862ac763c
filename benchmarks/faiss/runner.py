#!/usr/bin/env python3
"""FAISS peers for `adanns bench`.

Builds IVF{L},Flat (system "faiss") and, with --bytes, the quantised peers of
the opq suites: OPQ{M}_{D'},PQ{M}np (rigid OPQ, "faiss-opq") and
OPQ{M},IVF{L},PQ{M}np (IVF-OPQ, "faiss-ivf-opq"), on the files the harness
wrote. Prints one JSON line describing how FAISS runs (threads, version,
compile options), then one row per configuration (the results.json row
schema). MFLOPs are modelled with the adanns cost model from FAISS's own count
of scanned codes (indexIVF_stats.ndis), so the systems are charged alike.
Speeds are medians over --passes timed passes.
"""
import argparse
import json
import os
import resource
import sys
import time

import faiss
import numpy as np

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"{path}: empty file")
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def quality(ids, gt, k, labels_base, labels_queries):
    hits = sum(len(set(ids[q, :k]) & set(gt[q, :k])) for q in range(ids.shape[0]))
    recall = hits / (ids.shape[0] * k)
    if labels_base is None:
        return recall, None, None
    top1 = float(np.mean([labels_base[ids[q, 0]] == labels_queries[q] if ids[q, 0] >= 0 else False for q in range(ids.shape[0])]))
    total = 0.0
    for q in range(ids.shape[0]):
        found, s = 0, 0.0
        for i in range(k):
            if ids[q, i] >= 0 and labels_base[ids[q, i]] == labels_queries[q]:
                found += 1
                s += found / (i + 1)
        total += s / k
    return recall, top1, total / ids.shape[0]


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(np.ceil(p / 100 * len(s))) - 1))]


def timed(index, xq, k, passes, n_lat):
    """Batched QPS and one-query-at-a-time QPS, p50, p99: each the median over the passes."""
    index.search(xq, k)  # warm-up
    batch = []
    for _ in range(passes):
        t = time.perf_counter()
        index.search(xq, k)
        batch.append(xq.shape[0] / (time.perf_counter() - t))
    for i in range(min(10, n_lat)):
        index.search(xq[i : i + 1], k)
    qps, p50, p99 = [], [], []
    for _ in range(passes):
        lat = []
        for i in range(n_lat):
            t = time.perf_counter()
            index.search(xq[i : i + 1], k)
            lat.append((time.perf_counter() - t) * 1000)
        qps.append(1000 * len(lat) / sum(lat))
        p50.append(percentile(lat, 50))
        p99.append(percentile(lat, 99))
    return {"qps": float(np.median(qps)), "batchQps": float(np.median(batch)), "p50Ms": float(np.median(p50)), "p99Ms": float(np.median(p99))}


def peers(d, lists, byte_budgets):
    """(system, factory, M, D') per configuration; skips (as JSON lines) the budgets FAISS cannot build."""
    out = [("faiss", f"IVF{lists},Flat", 0, d)]
    for m in byte_budgets:
        if d % m:
            print(json.dumps({"skip": f"OPQ{m},IVF{lists},PQ{m}np: FAISS needs the dimension {d} divisible by {m}"}), flush=True)
        else:
            out.append(("faiss-ivf-opq", f"OPQ{m},IVF{lists},PQ{m}np", m, d))
        # the rotation may drop dimensions: D' rounded down to a multiple of 64 (and of M), the shape
        # of issue 16's reference OPQ16_768,PQ16 on 784-d data; else the largest multiple of M
        step = np.lcm(m, 64)
        d_out = int(d - d % step if d >= step else d - d % m)
        if d_out == 0:
            print(json.dumps({"skip": f"OPQ{m}: dimension {d} is below M = {m}"}), flush=True)
        else:
            out.append(("faiss-opq", f"OPQ{m}_{d_out},PQ{m}np", m, d_out))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--gt", required=True)
    p.add_argument("--labels-base")
    p.add_argument("--labels-queries")
    p.add_argument("--metric", required=True, choices=["cosine", "ip", "l2"])
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--lists", type=int, required=True)
    p.add_argument("--nprobes", required=True)
    p.add_argument("--bytes", default="")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--passes", type=int, default=3)
    a = p.parse_args()

    # the harness also sets the BLAS/OpenMP variables in this process's environment, so that
    # OpenBLAS (OPQ's products and SVD) cannot start its own threads beside OpenMP's
    faiss.omp_set_num_threads(a.threads)
    print(json.dumps({"system": {
        "threads": faiss.omp_get_max_threads(),
        "version": faiss.__version__,
        "compileOptions": faiss.get_compile_options(),
        "env": {v: os.environ.get(v, "") for v in THREAD_VARIABLES},
    }}), flush=True)

    xb = read_vecs(a.base, np.float32)
    xq = read_vecs(a.queries, np.float32)
    gt = read_vecs(a.gt, np.int32)
    labels_base = read_vecs(a.labels_base, np.int32)[:, 0] if a.labels_base else None
    labels_queries = read_vecs(a.labels_queries, np.int32)[:, 0] if a.labels_queries else None
    n, d = xb.shape
    metric = faiss.METRIC_L2 if a.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if a.metric == "cosine":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    n_lat = min(a.latency_queries, xq.shape[0])

    for system, factory, m, d_out in peers(d, a.lists, [int(x) for x in a.bytes.split(",") if x]):
        index = faiss.index_factory(d, factory, metric)
        started = time.perf_counter()
        index.train(xb)
        trained = time.perf_counter()
        index.add(xb)
        build = time.perf_counter() - started
        size = faiss.serialize_index(index).size
        ivf = faiss.try_extract_index_ivf(index)
        for nprobe in [int(x) for x in a.nprobes.split(",")] if ivf else [0]:
            if ivf:
                ivf.nprobe = nprobe
            faiss.cvar.indexIVF_stats.reset()
            _, ids = index.search(xq, a.k)
            # codes scanned per query; a flat PQ scans all n
            ndis = faiss.cvar.indexIVF_stats.ndis / xq.shape[0] if ivf else n
            recall, top1, mean_ap = quality(ids, gt, a.k, labels_base, labels_queries)
            if not ivf:  # rigid OPQ: rotation, tables, ADC over every code
                flops = d * d_out + 256 * d_out + ndis * m
            elif m:
                flops = d * d + a.lists * d + 256 * d + nprobe * d + ndis * m
            else:
                flops = a.lists * d + ndis * d
            print(json.dumps({
                "system": system,
                "spec": factory,
                "params": {"nprobe": nprobe} if ivf else {},
                "k": a.k,
                "recall": recall,
                "top1": top1,
                "map": mean_ap,
                "mflops": flops / 1e6,
                **timed(index, xq, a.k, a.passes, n_lat),
                "buildSeconds": build,
                "indexBytes": int(size),
                "rssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "note": f"FAISS {faiss.__version__}: train {trained - started:.1f} s of the build",
            }), flush=True)


if __name__ == "__main__":
    main()
