"""Do several autoencoders agree where one does not? Seeds, ensembles and k on a labelled corpus (issue 31).

    .venv/bin/python scripts/studies/seed_consensus.py --corpus ag [--seeds 0,1,2] [--members 1,3] [--fixed-k 4] [--vary manifold] [--combine vote]

Vectorizes the corpus (the quality bench's input) as the job does (the shipped defaults), takes the job's autoencoder sample
(all rows of the small corpora), and for each run seed s and ensemble size m trains m
autoencoders with seeds m*s .. m*s+m-1 (disjoint between runs), embeds every row with each,
standardizes each member's embedding and joins them side by side (m x 10 columns), then fits
the job's UMAP and clusterer (``k: auto``, and KMeans with ``--fixed-k``). Printed per ensemble
size: the chosen k per seed, the mean pairwise ARI between seeds, and the mean NMI against the
label, for ``k: auto`` and for the fixed k. ``--vary manifold`` trains the autoencoders once (seed 0) and
gives the run seed to UMAP instead: how much of the movement UMAP's own seed makes. ``--combine
vote`` clusters each member on its own and takes KMeans of the members' labels (as indicator
columns) for the consensus, rather than joining the embeddings.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for bench.py
from bench import cpu_model  # noqa: E402
from quality_bench import prepare  # noqa: E402

from n2d_spark.cli import build_local_session  # noqa: E402
from n2d_spark.core.config import load_config  # noqa: E402
from n2d_spark.model.autoencoder import resolve_precision, train_autoencoder  # noqa: E402
from n2d_spark.model.cluster import fit_clusters, kmeans  # noqa: E402
from n2d_spark.model.encoder import InputScaler  # noqa: E402
from n2d_spark.model.manifold import fit_manifold  # noqa: E402
from n2d_spark.rows.read import read_rows  # noqa: E402
from n2d_spark.rows.sampling import collect_sample  # noqa: E402
from n2d_spark.rows.text import COUNTS_COL, fit_text_model, vectorize  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def mean_pairwise_ari(labelings: list[np.ndarray]) -> float:
    return float(np.mean([adjusted_rand_score(a, b) for a, b in itertools.combinations(labelings, 2)]))


def ensemble_embedding(x, autoencoder, seed: int, members: int) -> np.ndarray:
    """``members`` autoencoders of seeds members*seed .. members*seed+members-1, each embedding standardized, side by side."""
    parts = []
    for member in range(members):
        z = train_autoencoder(x, dataclasses.replace(autoencoder, seed=members * seed + member)).encoder(x)
        parts.append((z - z.mean(axis=0)) / (z.std(axis=0) + 1e-12))
    return np.hstack(parts).astype(np.float32)


def one_hot(labelings: list[np.ndarray]) -> np.ndarray:
    """Each labelling's clusters as indicator columns, side by side: rows that share clusters in
    more members lie nearer (the co-association of evidence accumulation, without its n x n matrix)."""
    return np.hstack([(labels[:, None] == np.unique(labels)[None, :]).astype(np.float32) for labels in labelings])


def clustered(embedding: np.ndarray, manifold, config, fixed_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The job's UMAP of ``embedding``, then its clusterer (``k: auto``) and KMeans with ``fixed_k`` on the same coordinates."""
    _, points = fit_manifold(embedding, manifold)
    return fit_clusters(points, config.cluster)[1], kmeans(fixed_k, 0).fit_predict(points)


def voted_labels(x, config, seed: int, members: int, fixed_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``members`` autoencoders gets its own UMAP and clusterer; KMeans on the members'
    labels as indicator columns gives the consensus: with the members' median k (auto), and with ``fixed_k``."""
    auto, fixed = zip(*(
        clustered(ensemble_embedding(x, config.autoencoder, members * seed + member, 1), config.manifold, config, fixed_k)
        for member in range(members)
    ))
    k = int(np.median([len(np.unique(labels)) for labels in auto]))
    return kmeans(k, 0).fit_predict(one_hot(auto)), kmeans(fixed_k, 0).fit_predict(one_hot(fixed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("ag", "bbc", "reuters"), default="ag")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--members", default="1,3")
    parser.add_argument("--fixed-k", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], help="job config key=value")
    parser.add_argument("--vary", choices=("autoencoder", "manifold"), default="autoencoder",
                        help="which seed the run seed sets: the autoencoders' (default), or UMAP's over one autoencoder")
    parser.add_argument("--combine", choices=("join", "vote"), default="join",
                        help="members' embeddings side by side (default), or each member clustered and the labels voted")
    args = parser.parse_args()
    if args.combine == "vote" and args.vary == "manifold":
        parser.error("--vary manifold needs --combine join: a vote gives each member its own UMAP of the shipped seed")
    config = load_config(None, ["input.text_col=text", *args.set])
    spark = build_local_session(load_config(None, ["spark.master=local[2]"]))
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory() as work:
        rows = read_rows(spark, str(prepare(args.corpus, Path(work))), config.input).cache()
        rows.count()
    vectors = vectorize(fit_text_model(rows, config.input.text_col, config.text), rows).cache()
    n_rows = vectors.count()
    ids, counts = collect_sample(vectors, COUNTS_COL, n_rows, config.autoencoder.seed)
    labels = vectors.select("id", "label").toPandas().set_index("id").loc[ids, "label"].astype(str).to_numpy()
    scaler = InputScaler.fit(counts, config.text.scaling, config.text.l2_normalize)
    x = scaler.transform(counts)
    precision = resolve_precision(config.autoencoder.precision, x.shape[1])
    print(f"# {args.corpus}: {x.shape[0]} rows x {x.shape[1]} terms; CPU {cpu_model()}; precision {precision}")
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| members | seeds' k (auto) | ARI between seeds, auto | NMI, auto | ARI between seeds, k "
          f"{args.fixed_k} | NMI, k {args.fixed_k} | s per run |\n|---|---|---|---|---|---|---|")
    for members in (int(m) for m in args.members.split(",")):
        auto, fixed, ks, seconds = [], [], [], []
        embedding = None
        for seed in seeds:
            start = time.perf_counter()
            if args.combine == "vote":
                cluster_labels, fixed_labels = voted_labels(x, config, seed, members, args.fixed_k)
            else:
                if args.vary == "autoencoder" or embedding is None:
                    embedding = ensemble_embedding(x, config.autoencoder, seed if args.vary == "autoencoder" else 0, members)
                manifold = dataclasses.replace(config.manifold, seed=seed) if args.vary == "manifold" else config.manifold
                cluster_labels, fixed_labels = clustered(embedding, manifold, config, args.fixed_k)
            auto.append(cluster_labels)
            ks.append(len(np.unique(cluster_labels)))
            fixed.append(fixed_labels)
            seconds.append(time.perf_counter() - start)
        print(f"| {members} | {', '.join(map(str, ks))} | {mean_pairwise_ari(auto):.3f} | "
              f"{np.mean([normalized_mutual_info_score(labels, a) for a in auto]):.3f} | {mean_pairwise_ari(fixed):.3f} | "
              f"{np.mean([normalized_mutual_info_score(labels, f) for f in fixed]):.3f} | {np.mean(seconds):.0f} |", flush=True)


if __name__ == "__main__":
    main()
