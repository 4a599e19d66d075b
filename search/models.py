"""The corpus: papers, embedding spaces, per-paper vectors, and background jobs."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q
from pgvector.django import BitField, HalfVectorField, VectorField

from search.links import safe_link

ASPECTS = ("generic", "task", "method", "dataset")


class VarBitField(BitField):
    """`bit varying`: pgvector's BitField without a length would be bit(1); spaces of different
    dimensions share the column, and each space's index casts to bit(dim)."""

    def db_type(self, connection) -> str:
        return "bit varying"


class Paper(models.Model):
    """One research paper. Written only by search.services (ingestion)."""

    arxiv_id = models.CharField(max_length=32, unique=True, null=True, blank=True)
    doi = models.CharField(max_length=255, unique=True, null=True, blank=True)
    source_url = models.URLField(max_length=500, blank=True)
    title = models.TextField()
    abstract = models.TextField()
    authors = ArrayField(models.TextField(), default=list, blank=True)
    categories = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    venue = models.CharField(max_length=500, blank=True)
    published = models.DateField(null=True, blank=True)
    first_seen = models.DateField(null=True, blank=True)
    tasks = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    methods = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    datasets = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    # Task and dataset names found in the title and abstract ("task:Semantic Segmentation"),
    # by the concept dictionary of version `concepts_version` (search.concepts); every paper
    # has them, labelled or not. Set at ingestion, refreshed when the dictionary changes.
    concepts = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    concepts_version = models.CharField(max_length=20, blank=True, default="")
    # sha256 of the text the embedders see (title + abstract); embeddings computed from an
    # older hash are stale and get recomputed.
    content_hash = models.CharField(max_length=64)
    # Lower-case name tokens of all authors, so that an author filter ("van gool") is answered
    # from a GIN index instead of scanning every author list (function: migration 0003).
    author_tokens = models.GeneratedField(
        expression=models.Func(models.F("authors"), function="paperscope_name_tokens"),
        output_field=ArrayField(models.TextField()),
        db_persist=True,
    )
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config="english")
        + SearchVector("abstract", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published", "-id"]
        indexes = [
            GinIndex(fields=["search_vector"], name="paper_search_vector_gin"),
            GinIndex(fields=["categories"], name="paper_categories_gin"),
            GinIndex(fields=["author_tokens"], name="paper_author_tokens_gin"),
            GinIndex(fields=["tasks"], name="paper_tasks_gin"),
            GinIndex(fields=["methods"], name="paper_methods_gin"),
            GinIndex(fields=["datasets"], name="paper_datasets_gin"),
            GinIndex(fields=["concepts"], name="paper_concepts_gin"),
            models.Index(fields=["published"], name="paper_published_idx"),
            models.Index(fields=["venue"], name="paper_venue_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(title="") & ~Q(abstract=""), name="paper_has_title_and_abstract"
            ),
        ]

    def __str__(self) -> str:
        return self.title[:80]

    @property
    def external_url(self) -> str:
        # checked again here: rows stored before ingestion checked links are shown too
        if safe_link(self.source_url):
            return self.source_url
        if self.arxiv_id:
            return f"https://arxiv.org/abs/{self.arxiv_id}"
        if self.doi:
            return f"https://doi.org/{self.doi}"
        return ""


class ConceptStats(models.Model):
    """How many papers name each concept: the idf that weighs shared concepts (a shared
    "Semantic Role Labeling" says more than a shared "Image Classification") and the counts of
    the labels page. Recounted by the periodic concepts job; the newest row is the one in use."""

    dictionary_version = models.CharField(max_length=20)
    papers = models.PositiveIntegerField()  # papers counted (those with current concepts)
    frequencies = models.JSONField()  # {concept: number of papers}
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "concept stats"

    def __str__(self) -> str:
        return f"concepts of {self.papers} papers ({len(self.frequencies)} distinct)"


class EmbeddingSpace(models.Model):
    """One vector space: a model (name + version + dimension) applied to one aspect.

    A new model is a new space, filled in the background and switched on atomically by
    flipping `is_active`; at most one space per aspect is active.
    """

    name = models.SlugField(max_length=200, unique=True)
    model_name = models.CharField(max_length=300)
    model_version = models.CharField(max_length=100)
    dimension = models.PositiveIntegerField()
    aspect = models.CharField(max_length=50, default="generic")
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The ternary code's learned thresholds (search.codes), fitted once the space has vectors;
    # empty until then, and the `ternary` precision falls back to halfvec.
    code_thresholds = models.JSONField(null=True, blank=True, editable=False)
    code_version = models.CharField(max_length=20, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_name", "model_version", "aspect"], name="space_model_aspect_unique"
            ),
            models.UniqueConstraint(
                fields=["aspect"], condition=Q(is_active=True), name="one_active_space_per_aspect"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PaperEmbedding(models.Model):
    """A paper's vector in one space, with its quantized copies.

    The columns have no fixed dimension so that spaces of different models share the table;
    each space gets its own partial HNSW indexes on `embedding::vector(dim)` (see
    search.services.space_ensure_indexes). The half-precision and binary copies are written
    in the same statement as the full vector, so they can never go stale.
    """

    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="embeddings")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="embeddings")
    embedding = VectorField()
    embedding_half = HalfVectorField()
    embedding_bit = VarBitField()
    content_hash = models.CharField(max_length=64)
    # For aspect spaces: the abstract's sentences the aspect vector was built from, shown
    # as the "why" of a similarity (empty for the generic space).
    evidence = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "paper"], name="one_embedding_per_space"),
        ]


class PaperSentences(models.Model):
    """A paper's abstract sentences with their rhetorical roles and sentence vectors, in one
    encoder space (the generic space of the configured model): one compact row per paper.

    Current when `content_hash` is the paper's and `role_version` the loaded classifier's
    (search.services.sentences). `vectors` holds n x dim int8 (each row scaled by its own
    max |x| / 127; `scales` the n float32 factors): ~390 bytes a sentence instead of 1,536.
    """

    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="sentence_sets")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE,
                              related_name="sentence_sets")
    content_hash = models.CharField(max_length=64)
    role_version = models.CharField(max_length=40)
    fde_version = models.CharField(max_length=60)  # the FDEs written with these sentences
    texts = ArrayField(models.TextField(), default=list, blank=True)
    roles = ArrayField(models.CharField(max_length=12), default=list, blank=True)
    vectors = models.BinaryField(default=bytes)
    scales = models.BinaryField(default=bytes)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "paper"], name="one_sentence_set_per_space"),
        ]


class PaperFacetVector(models.Model):
    """One MUVERA fixed-dimensional encoding per paper, facet and space (search.multivector):
    the candidate generator of facet similarity. No fixed dimension, like the embeddings;
    each (space, facet, FDE version) gets a partial HNSW index on `fde::halfvec(dim)`
    (search.services.sentences.facet_index_statements). Written in the same transaction as
    the paper's sentences, so an FDE never outlives the sentences it encodes."""

    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="facet_vectors")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, db_index=False)
    facet = models.CharField(max_length=20)
    fde_version = models.CharField(max_length=60)
    fde = HalfVectorField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "facet", "paper"],
                                    name="one_facet_vector_per_space"),
        ]


class PaperCode(models.Model):
    """The ternary code (search.codes) of one stored vector.

    A narrow table of its own: fitting the code on an existing corpus then inserts small rows
    here instead of rewriting every wide vector row (which would re-insert it into the three
    HNSW indexes: minutes at 74.7k, hours at 1M). Kept fresh by the vector writer: in the same
    transaction as a vector it rewrites the code, or deletes it when the space has no
    thresholds yet (the code build then fills it in).
    """

    embedding = models.OneToOneField(PaperEmbedding, on_delete=models.CASCADE, primary_key=True,
                                     related_name="code")
    # Denormalised from the embedding for the per-space partial HNSW index.
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, db_index=False)
    code = VarBitField()
    # The paper's categories, for partial HNSW indexes per frequent category (an index
    # predicate cannot look into another table). Written with the code; a trigger on
    # search_paper keeps it in step when a paper's categories change (migration 0005).
    categories = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    # The paper's date, likewise: a date filter is then tested inside the graph walk, with no
    # join per visited row (migration 0006), and a month's rows have their own graph.
    published = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [
            # The days no month graph covers are ranked exactly from this index alone (an
            # index-only scan: reading the rows themselves cost 9 vs 1.5 ms for 5,600 codes
            # at 1M, the rows of a day being scattered over the table).
            models.Index(fields=["space", "published"], include=["embedding", "code"],
                         name="papercode_space_published"),
        ]


class Job(models.Model):
    """A long-running piece of work (ingestion, embedding) with progress for UI and API."""

    class Kind(models.TextChoices):
        INGEST = "ingest"
        EMBED = "embed"
        INDEX = "index"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    description = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    # {"created": n, "updated": n, "unchanged": n, "failed": n}
    stats = models.JSONField(default=dict, blank=True)
    # [{"file": ..., "line": n, "message": ...}], capped (see services.MAX_JOB_ERRORS)
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # written every few seconds by the worker running the job (services.jobs): "running"
    # with a stale heartbeat means the worker is gone
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return round(self.processed / self.total, 4) if self.total else 0.0


# --- operations: what the dashboard reads (search.operations) ----------------------------------

class RecallAuditRun(models.Model):
    """One run of the recall auditor (search.operations.audit): sampled queries through the
    planner and through exact ranking, per space and plan class (RecallMeasurement)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    seconds = models.FloatField(default=0.0)
    queries = models.PositiveIntegerField(default=0)
    target = models.FloatField()  # recall@10 below which a plan class is flagged
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"recall audit #{self.pk} ({self.status})"


class RecallMeasurement(models.Model):
    """recall@10 of one plan class in one space, in one audit run."""

    run = models.ForeignKey(RecallAuditRun, on_delete=models.CASCADE, related_name="measurements")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="recall")
    plan_class = models.CharField(max_length=40)
    measured_at = models.DateTimeField()  # the run's start, copied for the history query
    queries = models.PositiveIntegerField()
    recall_at_10 = models.FloatField()  # mean over the class's queries
    recall_min = models.FloatField()
    latency_p50_ms = models.FloatField()
    latency_p95_ms = models.FloatField()
    exact_p50_ms = models.FloatField()  # the oracle's own cost, for scale
    plans = models.JSONField(default=dict)  # {planner plan as reported: queries}
    below_target = models.BooleanField(default=False)

    class Meta:
        ordering = ["-measured_at", "space_id", "plan_class"]
        indexes = [models.Index(fields=["space", "plan_class", "measured_at"],
                                name="recall_space_class_time")]


class PipelineSnapshot(models.Model):
    """The pipeline as a periodic task saw it (vectors per space, queue depths, workers): the
    dashboard plots these instead of counting in a request."""

    taken_at = models.DateTimeField(auto_now_add=True, db_index=True)
    papers = models.PositiveIntegerField()
    # {"spaces": {name: {"id", "aspect", "active", "embedded", "missing"}},
    #  "queues": {name: depth}, "workers": [names]}
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-taken_at"]


class SpaceRegistry(models.Model):
    """Per aspect, what the model registry keeps beside the active space (EmbeddingSpace.is_active):
    the shadow being filled or compared, and the previous active space for a rollback."""

    aspect = models.CharField(max_length=50, unique=True)
    shadow = models.ForeignKey(EmbeddingSpace, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    previous = models.ForeignKey(EmbeddingSpace, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    # An operator chose the active space: the automatic switch to the configured model's
    # space (spaces.space_activate_when_complete) must not undo that choice.
    pinned = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "space registry"

    def __str__(self) -> str:
        return f"registry of {self.aspect}"


class SpaceComparison(models.Model):
    """A shadow space measured against the active one before a switch (registry.compare)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        DONE = "done"
        FAILED = "failed"

    created_at = models.DateTimeField(auto_now_add=True)
    baseline = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # {"papers": n, "overlap_at_10": x, "overlap_min": x, "latency_ms": {space: {"p50", "p95"}},
    #  "recall": {space: {class: recall@10}}}
    result = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
