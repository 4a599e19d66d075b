import pytest
from rest_framework.test import APIClient

from search import services
from search.models import Paper, PaperEmbedding

pytestmark = pytest.mark.django_db


def post(payload):
    return APIClient().post("/api/v1/recommend", payload, format="json")


def test_every_paper_gets_aspect_vectors_with_evidence_labelled_or_not(corpus):
    labelled = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()
    unlabelled = Paper.objects.get(arxiv_id="2503.22880")
    assert not unlabelled.tasks

    for paper in (labelled, unlabelled):
        rows = {e.space.aspect: e for e in PaperEmbedding.objects.filter(paper=paper)}
        assert set(rows) == {"generic", "task", "method", "dataset"}
        for aspect in ("task", "method", "dataset"):
            assert rows[aspect].evidence, aspect
            assert all(sentence in paper.abstract for sentence in rows[aspect].evidence)
        assert rows["generic"].evidence == []


def test_similar_by_method_explains_scores_labels_and_sentences(corpus):
    paper = Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).first()

    body = APIClient().get(f"/api/v1/papers/{paper.pk}/similar",
                           {"aspect": "method", "k": 5}).json()

    assert body["aspect"] == "method" and len(body["results"]) == 5
    explanation = body["results"][0]["explanation"]
    assert set(explanation["similarity"]) == {"generic", "task", "method", "dataset"}
    assert explanation["sentences"]["method"]["result"]
    assert explanation["sentences"]["method"]["query"]
    sr_ids = set(Paper.objects.filter(tasks__contains=["Image_Super-Resolution"])
                 .values_list("pk", flat=True))
    shared = [r for r in body["results"] if r["id"] in sr_ids]
    assert shared and all("Image_Super-Resolution" in r["explanation"]["shared_labels"]["task"]
                          for r in shared)


def test_a_negative_example_demotes_its_neighbours(corpus):
    positive = Paper.objects.get(arxiv_id="2503.22880")
    others = Paper.objects.count() - 1
    plain = [r["id"] for r in post({"positive": [positive.pk], "k": 100}).json()["results"]]
    assert len(plain) == others  # every other paper is ranked: each has a rank to compare
    negative_id = plain[0]  # the paper most like the positive...
    # ...and its own nearest paper (not the positive: examples are never results)
    neighbour = next(r["id"] for r in APIClient().get(
        f"/api/v1/papers/{negative_id}/similar", {"k": 3}).json()["results"] if r["id"] != positive.pk)

    demoted = [r["id"] for r in post({"positive": [positive.pk], "negative": [negative_id],
                                      "k": 100}).json()["results"]]

    assert negative_id not in demoted and len(demoted) == others - 1
    # rank among the same papers (the negative left out of both): with a negative that
    # had no effect the two orders would be the same
    before = [pid for pid in plain if pid != negative_id].index(neighbour)
    assert before < others - 2  # there is room to fall
    assert demoted.index(neighbour) > before


def test_more_like_two_examples_counts_the_names_they_share_and_a_negatives_names_against(
        corpus, settings):
    import numpy as np

    from search import concepts
    from search.selectors import stored_vectors

    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS,
                               "task": {"words": 0.0, "concepts": 4.0, "kinds": ("task",)}}
    services.concept_stats_fit()
    positives = list(Paper.objects.filter(title__contains="Super-Resol").order_by("pk")[:2])
    candidates = list(Paper.objects.exclude(pk__in=[p.pk for p in positives])
                      .values_list("pk", flat=True))
    body = post({"positive": [p.pk for p in positives], "aspects": {"task": 1.0},
                 "candidates": candidates, "k": 5}).json()

    # the oracle: z(cosine to the mean task vector) + 4 * cosine of the task names with the
    # examples' summed idf-weighted names
    space = next(s for s in corpus if s.aspect == "task")
    vectors = stored_vectors(space, [p.pk for p in positives] + candidates)
    centre = vectors[positives[0].pk] + vectors[positives[1].pk]
    centre /= np.linalg.norm(centre)
    cos = np.array([float(centre @ vectors[c]) for c in candidates])
    n, found = Paper.objects.count(), dict(Paper.objects.values_list("pk", "concepts"))

    def names(pid):
        v = {c: concepts.idf(Paper.objects.filter(concepts__contains=[c]).count(), n)
             for c in found[pid] if c.startswith("task:")}
        norm = np.sqrt(sum(x * x for x in v.values())) or 1.0
        return {c: x / norm for c, x in v.items()}

    both = {}
    for p in positives:
        for c, x in names(p.pk).items():
            both[c] = both.get(c, 0) + x
    norm = np.sqrt(sum(x * x for x in both.values()))
    shared = np.array([sum(x / norm * names(c).get(k, 0) for k, x in both.items()) for c in candidates])
    fused = (cos - cos.mean()) / cos.std() + 4.0 * shared
    expected = [candidates[i] for i in np.lexsort((np.array(candidates), -fused))[:5]]
    got = [r["id"] for r in body["results"]]
    assert got == expected
    assert "Super-Resolution" in body["results"][0]["explanation"]["shared_concepts"]["task"]

    # a negative naming the same tasks pushes a third paper naming them down
    a, b, c = Paper.objects.filter(concepts__contains=["task:Super-Resolution"]).order_by("pk")[:3]
    others = list(Paper.objects.exclude(pk__in=[a.pk, b.pk]).values_list("pk", flat=True))

    def rank_of_c(negative):
        body = post({"positive": [a.pk], "negative": negative, "aspects": {"task": 1.0},
                     "candidates": others, "k": len(others)}).json()
        return [r["id"] for r in body["results"]].index(c.pk)

    assert rank_of_c([]) == 0  # alone, the other super-resolution paper comes first
    assert rank_of_c([b.pk]) > 0


def test_recommend_reranks_a_given_candidate_list_within_filters(corpus):
    positive = Paper.objects.get(arxiv_id="2503.22880")
    candidates = list(Paper.objects.exclude(pk=positive.pk).values_list("pk", flat=True)[:6])

    body = post({"positive": [positive.pk], "candidates": candidates,
                 "aspects": {"task": 1.0, "generic": 0.5}, "k": 10}).json()

    assert sorted(r["id"] for r in body["results"]) == sorted(candidates)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("payload, field", [
    ({"positive": [999999]}, "papers"),
    ({"positive": []}, "positive"),
    ({"positive": [1], "aspects": {"colour": 1.0}}, "aspects"),
    ({"positive": [1], "aspects": {"method": 0}}, "aspects"),
    ({"positive": [1], "filters": {"published_after": "soon"}}, "filters"),
    ({"positive": [1], "filters": {"shape": "round"}}, "filters"),
    ({"positive": [1], "k": 1000}, "k"),
])
def test_bad_recommend_input_is_a_400_naming_the_problem(corpus, payload, field):
    if payload["positive"] == [1]:
        payload = {**payload, "positive": [Paper.objects.first().pk]}

    response = post(payload)

    assert response.status_code == 400
    body = response.json()
    assert field in body or field in body.get("errors", {})


def test_an_unknown_aspect_on_similar_is_a_400(corpus):
    paper = Paper.objects.first()

    response = APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "colour"})

    assert response.status_code == 400 and "aspect" in response.json()["errors"]


def test_the_paper_page_has_aspect_tabs_and_the_recommend_page_renders(client, corpus):
    paper = Paper.objects.get(arxiv_id="2503.22880")

    tab = client.get(f"/papers/{paper.pk}/", {"aspect": "method"}, HTTP_HX_REQUEST="true")
    page = client.get("/recommend/", {"positive": [paper.pk], "w_method": "1"})

    assert "Why:" in tab.content.decode() and "<html" not in tab.content.decode()
    assert page.status_code == 200 and "More like these" in page.content.decode()
    assert page.content.decode().count('class="result"') == 20


def test_the_task_tab_says_which_task_names_both_papers_are_nearest_to(client, corpus, built_names,
                                                                      monkeypatch):
    from recommend import nearest_names

    monkeypatch.setattr(nearest_names, "NEAREST_FLOOR", 0.0)  # hash vectors sit far from any name
    monkeypatch.setattr(nearest_names, "NEAREST_TOP", 50)
    paper = Paper.objects.get(arxiv_id="2503.22880")

    html = client.get(f"/papers/{paper.pk}/", {"aspect": "task"}, HTTP_HX_REQUEST="true").content.decode()
    body = APIClient().get(f"/api/v1/papers/{paper.pk}/similar", {"aspect": "task"}).json()

    about = [r["explanation"]["both_about"]["task"] for r in body["results"] if r["explanation"]["both_about"]]
    assert about  # shown as an inferred chip, set apart from the names written in the text
    assert html.count('class="chip about"') == len(about) and f"both about: {', '.join(about[0])}" in html


def test_the_labels_page_lists_labels_with_counts(client, corpus):
    html = client.get("/labels/").content.decode()

    assert "Image_Super-Resolution" in html


def test_more_like_these_weighs_the_names_nearest_the_examples_and_against_a_negatives(
        corpus, settings, monkeypatch):
    import numpy as np

    from recommend import nearest_names
    from search import concepts
    from search.embedders import get_encoder
    from search.selectors import concept_weights, stored_vectors

    w, near = 2.0, 4.0
    settings.RERANK_WEIGHTS = {**settings.RERANK_WEIGHTS,
                               "task": {"words": 0.0, "concepts": w, "kinds": ("task",), "nearest": near}}
    services.concept_stats_fit()
    generic = next(s for s in corpus if s.aspect == "generic")
    d = concepts.shipped_dictionary()
    names = sorted({c for t in (d.exact, d.folded) for found in t.values() for c in found if c.startswith("task:")})
    E = get_encoder(generic.model_name).encode([concepts.name_of(c) for c in names])
    E = E + np.random.default_rng(0).normal(0, 1e-3, E.shape)  # hash vectors tie; noise makes one answer
    E = (E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32)
    monkeypatch.setattr(nearest_names, "name_vectors", lambda kind, model: (names, E))
    monkeypatch.setattr(nearest_names, "NEAREST_TOP", 50)
    monkeypatch.setattr(nearest_names, "NEAREST_FLOOR", 0.0)
    positives = [p.pk for p in Paper.objects.filter(title__contains="Super-Resol").order_by("pk")[:2]]
    negative = Paper.objects.exclude(pk__in=positives).filter(concepts=[]).order_by("pk").first().pk
    candidates = list(Paper.objects.exclude(pk__in=[*positives, negative]).values_list("pk", flat=True))

    body = post({"positive": positives, "negative": [negative], "aspects": {"task": 1.0},
                 "candidates": candidates, "k": 5}).json()

    # the oracle, per candidate c: z over the candidates of (cos(c, mean positive task vector)
    # - 0.7 cos(c, negative)) + w * (found names: cosine with the positives' summed names - 0.7
    # with the negative's + near * the same of the nearest names)
    task = stored_vectors(next(s for s in corpus if s.aspect == "task"), [*positives, negative, *candidates])
    g = stored_vectors(generic, [*positives, negative, *candidates])

    def unit(v):
        return v / np.linalg.norm(v)

    def nearest(pid):
        s = E.astype(np.float64) @ g[pid]
        v = np.zeros(len(names))
        top = np.argsort(-s)[:50]
        v[top] = np.maximum(s[top], 0)
        return unit(v)

    idf, found = concept_weights().idf, dict(Paper.objects.values_list("pk", "concepts"))

    def named(pid):
        return concepts.weighted(found[pid], idf, ("task",))

    centre = unit(task[positives[0]] + task[positives[1]])
    vector = np.array([centre @ task[c] - 0.7 * task[negative] @ task[c] for c in candidates])
    both: dict[str, float] = {}
    for p in positives:
        for c, x in named(p).items():
            both[c] = both.get(c, 0.0) + x
    both = {c: x / (np.sqrt(sum(v * v for v in both.values())) or 1.0) for c, x in both.items()}
    found_term = np.array([concepts.cosine(both, named(c)) - 0.7 * concepts.cosine(named(negative), named(c))
                           for c in candidates])
    near_centre = unit(nearest(positives[0]) + nearest(positives[1]))
    near_term = np.array([nearest(c) @ near_centre - 0.7 * nearest(c) @ nearest(negative) for c in candidates])
    assert near_term.std() > 0.02
    fused = (vector - vector.mean()) / vector.std() + w * (found_term + near * near_term)
    expected = [candidates[i] for i in np.lexsort((np.array(candidates), -fused))[:5]]
    assert [r["id"] for r in body["results"]] == expected
    without = (vector - vector.mean()) / vector.std() + w * found_term
    assert expected != [candidates[i] for i in np.lexsort((np.array(candidates), -without))[:5]]
