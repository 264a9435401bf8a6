import numpy as np
import pytest

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from n2d_spark.core.metrics import agreement, label_shape, npmi_coherence, silhouette_on_sample, table_agreement, topic_diversity


def clustering_accuracy(classes, labels):
    return agreement(labels, classes)["accuracy"]


def test_accuracy_is_invariant_to_cluster_ids():
    classes = np.array(["a", "a", "b", "b", "c", "c"])
    assert clustering_accuracy(classes, np.array([7, 7, 3, 3, 5, 5])) == 1.0


def test_accuracy_by_hand():
    # Clusters 0 -> a (2 rows right), 1 -> b (2 right); the "a" in cluster 1 and the "b" in cluster 0 are wrong.
    classes = np.array(["a", "a", "a", "b", "b", "b"])
    labels = np.array([0, 0, 1, 1, 1, 0])
    assert clustering_accuracy(classes, labels) == pytest.approx(4 / 6)


def test_noise_is_a_cluster_of_its_own():
    # Noise (-1) can be matched to one class only: here to "b", which leaves "c" unmatched.
    classes = np.array(["a", "a", "b", "b", "c", "c"])
    labels = np.array([0, 0, -1, -1, -1, -1])
    assert clustering_accuracy(classes, labels) == pytest.approx(4 / 6)
    scores = agreement(labels, classes)
    assert scores["noise_share"] == pytest.approx(4 / 6)
    assert scores["accuracy"] == pytest.approx(4 / 6)


def test_more_clusters_than_classes():
    classes = np.array(["a", "a", "a", "a"])
    labels = np.array([0, 0, 1, 2])
    assert clustering_accuracy(classes, labels) == pytest.approx(0.5)


def test_ari_and_nmi_by_hand():
    classes = np.array([0, 0, 1, 1])
    perfect = agreement(np.array([1, 1, 0, 0]), classes)
    assert perfect["ari"] == pytest.approx(1.0) and perfect["nmi"] == pytest.approx(1.0)
    # Each cluster holds one row of each class: no information at all.
    independent = agreement(np.array([0, 1, 0, 1]), classes)
    assert independent["nmi"] == pytest.approx(0.0, abs=1e-12)
    # ARI by hand: pair index sum C(n_ij, 2) = 0; class and cluster sums 2 each; C(4, 2) = 6;
    # expected index 2 * 2 / 6 = 2/3; max index (2 + 2) / 2 = 2 -> (0 - 2/3) / (2 - 2/3) = -0.5.
    assert independent["ari"] == pytest.approx(-0.5)
    # NMI by hand for classes [0,0,0,1] vs labels [0,0,1,1]: I = H(C) + H(L) - H(C,L).
    h = lambda p: -sum(x * np.log(x) for x in p if x > 0)  # noqa: E731
    mutual = h([0.75, 0.25]) + h([0.5, 0.5]) - h([0.5, 0.25, 0.25])
    expected = mutual / ((h([0.75, 0.25]) + h([0.5, 0.5])) / 2)
    assert agreement(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]))["nmi"] == pytest.approx(expected)


def test_label_shape():
    shape = label_shape(np.array([2, 2, 2, 0, -1]))
    assert shape == {"n_clusters": 2, "noise_share": 0.2, "sizes": {2: 3, 0: 1}}


def test_silhouette_on_sample_ignores_noise_and_needs_two_clusters():
    points = np.array([[0.0], [0.1], [10.0], [10.1], [50.0]])
    labels = np.array([0, 0, 1, 1, -1])
    # a(i) = 0.1, b(i) ~ 10 for every clustered point: s = 1 - 0.1 / b(i).
    expected = np.mean([1 - 0.1 / 10.05, 1 - 0.1 / 9.95, 1 - 0.1 / 9.95, 1 - 0.1 / 10.05])
    assert silhouette_on_sample(points, labels, sample_rows=100, seed=0) == pytest.approx(expected, rel=1e-3)
    assert silhouette_on_sample(points, np.array([0, 0, 0, 0, -1]), sample_rows=100, seed=0) is None


def test_npmi_sliding_windows_by_hand():
    # Windows of 2 tokens: "a b c" gives (a b), (b c); "a c" is one window (a c). Three windows:
    # p(a) = p(b) = p(c) = 2/3 and each pair 1/3, so NPMI = log((1/3) / (4/9)) / -log(1/3) = log(3/4) / log 3.
    documents = [["a", "b", "c"], ["a", "c"]]
    expected = np.log(3 / 4) / np.log(3)
    assert npmi_coherence(documents, [["a", "b", "c"], ["b", "c"]], window=2) == pytest.approx([expected, expected], abs=1e-9)


def test_npmi_separates_coherent_from_incoherent_topics():
    # Window 10 (the default): a document shorter than the window is one window.
    documents = [["cat", "dog", "pet"], ["cat", "dog"], ["stock", "bank"], ["stock", "bank", "loan"]]
    coherent, mixed, short = npmi_coherence(documents, [["cat", "dog"], ["cat", "stock"], ["cat"]])
    # cat & dog: 2 of 4 windows each, both together -> log(0.5 / 0.25) / -log(0.5) = 1.
    assert coherent == pytest.approx(1.0, abs=1e-9)
    # cat & stock never share a window: gensim's epsilon (1e-12) keeps it finite, near -1:
    # log(eps / (1/2 * 1/2)) / -log(eps).
    assert mixed == pytest.approx(np.log(1e-12 / 0.25) / -np.log(1e-12), abs=1e-9)
    assert short is None


def test_npmi_windows_slide_along_long_documents():
    # 12 tokens, window 10: 3 windows starting at 0, 1, 2. "x" at position 0 is only in the
    # first window; "y" at 11 only in the last; "m" at 5 in all three.
    tokens = ["x"] + [f"f{i}" for i in range(4)] + ["m"] + [f"g{i}" for i in range(5)] + ["y"]
    far, near = npmi_coherence([tokens, ["z", "w"]], [["x", "y"], ["x", "m"]])
    # 4 windows: p(x) = p(y) = 1/4, never together.
    assert far == pytest.approx(np.log(1e-12 / (1 / 16)) / -np.log(1e-12), abs=1e-9)
    # p(x) = 1/4, p(m) = 3/4, p(x, m) = 1/4: log(1/4 / (3/16)) / -log(1/4).
    assert near == pytest.approx(np.log(4 / 3) / np.log(4), abs=1e-9)


def test_npmi_repeats_gensims_sliding_window_count():
    # gensim marks a token absent once its first occurrence leaves the window, even when it occurs
    # again inside it. Window 3 over "a b a c": windows (a b a), (b a c); the second has "a", but
    # gensim drops it as the first "a" leaves: p(a) = 1/2, p(c) = 1/2, p(a, c) = 0 -> near -1.
    (score,) = npmi_coherence([["a", "b", "a", "c"]], [["a", "c"]], window=3)
    assert score == pytest.approx(np.log(1e-12 / 0.25) / -np.log(1e-12), abs=1e-9)


def test_npmi_equals_gensim():
    gensim = pytest.importorskip("gensim", reason="gensim is a test dependency (pyproject's test extra)")
    from gensim.corpora import Dictionary
    from gensim.models.coherencemodel import CoherenceModel

    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(80)]
    # Short and long documents, repeated tokens, an empty one, some with no topic term at all.
    documents = [list(rng.choice(vocab[: 20 + (d % 4) * 20], size=int(rng.integers(0, 40)))) for d in range(300)]
    topics = [list(rng.choice(vocab[:60], size=10, replace=False)) for _ in range(6)]
    expected = CoherenceModel(
        topics=topics, texts=documents, dictionary=Dictionary(documents), coherence="c_npmi", window_size=10, processes=1
    ).get_coherence_per_topic()
    assert gensim.__version__
    np.testing.assert_allclose(npmi_coherence(documents, topics), expected, rtol=1e-9, atol=1e-12)


def test_topic_diversity_by_hand():
    assert topic_diversity([["a", "b"], ["b", "c"]], n_terms=2) == pytest.approx(3 / 4)
    assert topic_diversity([["a", "b", "c"], ["d", "e", "f"]], n_terms=3) == 1.0
    # Only the first n_terms of each topic count; topics without terms are left out.
    assert topic_diversity([["a", "b", "z"], ["a", "b"], []], n_terms=2) == pytest.approx(2 / 4)
    assert topic_diversity([]) is None


@pytest.mark.parametrize("n_rows, n_classes, n_clusters", [(50, 3, 4), (2000, 2, 9), (300, 1, 1), (300, 5, 1)])
def test_contingency_scores_equal_scikit_learn(n_rows, n_classes, n_clusters):
    rng = np.random.default_rng(n_rows)
    classes = rng.integers(0, n_classes, n_rows)
    # Half the rows follow their class, so that the scores are neither 0 nor 1.
    labels = np.where(rng.random(n_rows) < 0.5, classes % n_clusters, rng.integers(-1, n_clusters, n_rows))
    scores = agreement(labels, classes)
    assert scores["ari"] == pytest.approx(adjusted_rand_score(classes, labels), abs=1e-12)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(classes, labels), abs=1e-12)


def test_contingency_scores_do_not_overflow_at_millions_of_rows():
    table = np.array([[400_000, 100_000], [50_000, 450_000]]) * 3
    classes = np.repeat([0, 0, 1, 1], table.ravel())
    labels = np.repeat([0, 1, 0, 1], table.ravel())
    scores = table_agreement(table, noise=0.0)
    assert scores["ari"] == pytest.approx(adjusted_rand_score(classes, labels), rel=1e-9)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(classes, labels), rel=1e-9)
    assert scores["accuracy"] == pytest.approx(0.85)
