"""`manage.py bench aspects` reports each aspect against the stronger baseline, plainly."""

from bench.aspects import summary


def metrics(map10, n=100):
    return {"p_at_10": map10 / 2, "map_at_10": map10, "ndcg_at_10": map10 + 0.1, "n_queries": n}


def result(generic, peer, app, n=100, ci=(1.0, 2.0)):
    return {"test": {"generic": metrics(generic, n), "peer": metrics(peer, n), "settings": metrics(app, n)},
            "max_baseline": max(generic, peer), "ratio_ci95": {"settings": list(ci)}}


def test_summary_compares_the_app_with_the_stronger_baseline_and_says_where_the_target_is_missed():
    text = summary({
        "pwc/task": result(0.2, 0.3, 0.6),            # 2.0x the peer
        "scirex/task": result(0.5, 0.4, 0.55),        # 1.1x generic
        "scirex/method": result(0.1, 0.2, 0.3, n=9),  # 1.5x, but on 9 queries
        "pwc/area": {"test": {"generic": metrics(0.3), "peer": metrics(0.3)}, "max_baseline": 0.3},
    })
    assert "| pwc/task | 100 | app | 0.300 | 0.600 | 0.700 | 2.00 (CI95 1.00-2.00) |" in text
    assert "- pwc/task: meets the 1.3x target" in text
    assert "- scirex/task: does not meet the 1.3x target" in text
    assert "- scirex/method: meets the 1.3x target (too few queries to tell)" in text
    assert "pwc/area" not in text  # no aspect of the app to report there
