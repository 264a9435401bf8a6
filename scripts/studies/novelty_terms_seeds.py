"""Issue 30, novelty in the terms (not merged): how the calibrated threshold and the flagged shares move with the seed
of the split, on vectors pickled by novelty_terms_vectors.py (paths below: /tmp/nov/{ag,syn,imdb}_terms.pkl).

    .venv/bin/python scripts/studies/novelty_terms_seeds.py
"""
import pickle, numpy as np
import n2d_spark.model.novelty as nv
from n2d_spark.model.encoder import smoothed_idf
from sklearn.metrics import roc_auc_score
sets = {"ag": ("/tmp/nov/ag_terms.pkl", "Sci/Tech"), "syn": ("/tmp/nov/syn_terms.pkl", "scifi"), "imdb": ("/tmp/nov/imdb_terms.pkl", None)}
K = 15
def run(name, seed, splits=1):
    path, wh = sets[name]; d = pickle.load(open(path, "rb"))
    CA, wA = d["train"][:2]; CB, wB = d["new"][:2]; y = None if wh is None else (d["new"][2] == wh)
    idf = smoothed_idf(CA); PA, PB = nv.term_points(CA, wA, idf), nv.term_points(CB, wB, idf)
    half = min(PA.shape[0]//2, 5000)
    res = {}
    # calibration splits
    cal_r = []
    for s in range(splits):
        known, held = (p[:half] for p in nv.split_halves(PA, seed + 1000*s))
        r = nv.density_ratios(held, known, held, np.ones(half, bool), K, "cosine"); cal_r.append(r)
        if s == 0: known0 = known
    n = min(half, PB.shape[0])
    samp = np.random.default_rng(seed).choice(PB.shape[0], n, replace=False); ins = np.zeros(PB.shape[0], bool); ins[samp] = True
    r = nv.density_ratios(PB, known0[:n], PB[samp], ins, K, "cosine")
    # V1 median ratio, quantile averaged over splits
    thr = np.mean([np.quantile(c/np.median(c), 0.98) for c in cal_r])
    v1 = r/np.median(r[samp]) > thr
    # V2 robust z: (log r - median)/MAD
    def z(x, ref): l = np.log(x); m = np.median(np.log(ref)); return (l - m)/np.median(np.abs(np.log(ref)-m))
    zthr = np.mean([np.quantile(z(c, c), 0.98) for c in cal_r])
    v2 = z(r, r[samp]) > zthr
    out = []
    for v in (v1, v2):
        out.append(f"{v[y].mean():.3f}/{v[~y].mean():.3f}" if y is not None else f"{v.mean():.3f}")
    auc = f" auc {roc_auc_score(y, r):.3f}" if y is not None else ""
    return out, auc
for name in ("ag", "syn", "imdb"):
    for splits in (1, 5):
        rows = [run(name, seed, splits) for seed in (0, 1, 42)]
        print(name, "splits", splits, "V1 median/quantile:", [r[0][0] for r in rows], " V2 robust z:", [r[0][1] for r in rows], rows[0][1], flush=True)
