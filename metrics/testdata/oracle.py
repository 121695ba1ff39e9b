"""An independent computation of stitch's metrics for TestOracle.

Reads a JSON case on stdin ({n, m, ks, scores, labels, types}, row-major)
and writes the metrics as JSON: the top-k ones with NumPy following
metrics/doc.go, the threshold-free ones with scikit-learn.
"""
import json
import sys

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

case = json.load(sys.stdin)
n, m = case["n"], case["m"]
scores = np.array(case["scores"], dtype=np.float32).reshape(n, m)
labels = np.array(case["labels"], dtype=np.int8).reshape(n, m)
types = np.array(case["types"])
known = labels != 0
pos = labels == 1


def top(s, k):
    """Boolean mask of each row's k best columns, ties to the lower column."""
    cols = np.tile(np.arange(s.shape[1]), (s.shape[0], 1))
    order = np.lexsort((cols, -s), axis=1)[:, :k]
    mask = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def safe(a, b):
    return a / b if b else 0.0


def f1(p, r):
    return 2 * p * r / (p + r) if p + r else 0.0


out = {"topk": {}, "ranking": {}}
for k in case["ks"]:
    sel = top(scores, min(k, m))
    tp = (sel & pos).sum(0)
    pred = (sel & known).sum(0)
    gt = pos.sum(0)
    micro_r, micro_p = safe(tp.sum(), gt.sum()), safe(tp.sum(), pred.sum())
    rs = [safe(tp[a], gt[a]) for a in range(m) if gt[a]]
    ps = [safe(tp[a], pred[a]) for a in range(m) if gt[a]]
    fs = [f1(p, r) for p, r in zip(ps, rs)]
    per_type, hits_all, pos_all = {}, 0, 0
    for t in sorted(set(types.tolist())):
        cols = np.flatnonzero(types == t)
        tsel = top(scores[:, cols], min(k, len(cols)))
        hits, positives = int((tsel & pos[:, cols]).sum()), int(pos[:, cols].sum())
        per_type[str(t)] = safe(hits, positives)
        hits_all, pos_all = hits_all + hits, pos_all + positives
    out["topk"][str(k)] = {
        "micro": [micro_r, micro_p, f1(micro_p, micro_r)],
        "macro": [float(np.mean(rs)), float(np.mean(ps)), float(np.mean(fs))],
        "types": per_type,
        "pooled": safe(hits_all, pos_all),
        "tp": tp.tolist(), "pred": pred.tolist(),
    }

ap, auc = [], []
for a in range(m):
    y, s = pos[known[:, a], a], scores[known[:, a], a]
    ap.append(float(average_precision_score(y, s)) if y.any() else None)
    auc.append(float(roc_auc_score(y, s)) if y.any() and not y.all() else None)
out["ranking"] = {
    "ap": ap, "auc": auc,
    "micro_ap": float(average_precision_score(pos[known], scores[known])),
    "micro_auc": float(roc_auc_score(pos[known], scores[known])),
    "macro_ap": float(np.mean([v for v in ap if v is not None])),
    "macro_auc": float(np.mean([v for v in auc if v is not None])),
}
json.dump(out, sys.stdout)
