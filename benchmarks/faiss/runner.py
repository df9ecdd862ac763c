#!/usr/bin/env python3
"""FAISS baseline for `adanns bench`.

Builds IVF{n},Flat and OPQ{M},IVF{n},PQ{M}np on the files the harness wrote,
sweeps nprobe and prints one JSON row per configuration (the results.json row
schema). MFLOPs are modelled with the adanns cost model from FAISS's own count
of scanned codes (indexIVF_stats.ndis), so the two systems are charged alike.
"""
import argparse
import json
import resource
import sys
import time

import faiss
import numpy as np


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
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    xb = read_vecs(a.base, np.float32)
    xq = read_vecs(a.queries, np.float32)
    gt = read_vecs(a.gt, np.int32)
    labels_base = read_vecs(a.labels_base, np.int32)[:, 0] if a.labels_base else None
    labels_queries = read_vecs(a.labels_queries, np.int32)[:, 0] if a.labels_queries else None
    d = xb.shape[1]
    metric = faiss.METRIC_L2 if a.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if a.metric == "cosine":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    faiss.omp_set_num_threads(a.threads)

    factories = [(f"IVF{a.lists},Flat", 0)]
    for m in [int(x) for x in a.bytes.split(",") if x]:
        if d % m:
            print(json.dumps({"skip": f"OPQ{m},IVF{a.lists},PQ{m}np: FAISS needs the dimension {d} divisible by {m}"}), flush=True)
            continue
        factories.append((f"OPQ{m},IVF{a.lists},PQ{m}np", m))

    for factory, m in factories:
        index = faiss.index_factory(d, factory, metric)
        started = time.perf_counter()
        index.train(xb)
        index.add(xb)
        build = time.perf_counter() - started
        size = faiss.serialize_index(index).size
        ivf = faiss.extract_index_ivf(index)
        for nprobe in [int(x) for x in a.nprobes.split(",")]:
            ivf.nprobe = nprobe
            faiss.cvar.indexIVF_stats.reset()
            _, ids = index.search(xq, a.k)
            ndis = faiss.cvar.indexIVF_stats.ndis / xq.shape[0]
            recall, top1, mean_ap = quality(ids, gt, a.k, labels_base, labels_queries)
            index.search(xq, a.k)  # warm-up
            times = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                index.search(xq, a.k)
                times.append(time.perf_counter() - t)
            batch = float(np.median(times))
            faiss.omp_set_num_threads(1)
            n_lat = min(a.latency_queries, xq.shape[0])
            for i in range(min(10, n_lat)):
                index.search(xq[i : i + 1], a.k)
            lat = []
            for i in range(n_lat):
                t = time.perf_counter()
                index.search(xq[i : i + 1], a.k)
                lat.append((time.perf_counter() - t) * 1000)
            faiss.omp_set_num_threads(a.threads)
            lat.sort()
            if m:
                flops = d * d + a.lists * d + 256 * d + nprobe * d + ndis * m
            else:
                flops = a.lists * d + ndis * d
            print(json.dumps({
                "system": "faiss",
                "spec": factory,
                "params": {"nprobe": nprobe},
                "k": a.k,
                "recall": recall,
                "top1": top1,
                "map": mean_ap,
                "mflops": flops / 1e6,
                "qps": 1000 / (sum(lat) / len(lat)),
                "batchQps": xq.shape[0] / batch,
                "p50Ms": lat[max(0, int(np.ceil(0.5 * len(lat))) - 1)],
                "p99Ms": lat[max(0, int(np.ceil(0.99 * len(lat))) - 1)],
                "buildSeconds": build,
                "indexBytes": int(size),
                "rssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "note": f"FAISS {faiss.__version__}, {a.threads} thread(s) batched",
            }), flush=True)


if __name__ == "__main__":
    main()
