"""Aspect-aware paper similarity ("similar papers by task / method / dataset").

Pure Python + numpy (torch only inside adapter training), no Django imports, so the app,
the benchmark (bench/aspects_eval.py) and the tests can all use it.

Modules:
- metrics:  P@10, MAP@10, nDCG@10 over a score matrix and relevance sets.
- text:     sentence splitting and rhetorical-role cue scoring.
- encoders: MiniLM loader and an on-disk embedding cache keyed by text hash.
- adapter:  per-aspect linear adapter trained with an in-batch softmax contrastive loss.
- methods:  candidate aspect-vector methods with a common fit/encode/score interface.
"""

ASPECTS = ("task", "method", "dataset", "area")
