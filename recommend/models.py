from django.conf import settings
from django.db import models


class LexicalModel(models.Model):
    """A fitted tf-idf vocabulary (recommend.lexical): the terms and their idf weights.

    Stored in the database rather than on disk so that every worker and web process, on any
    machine, reranks with the same fit; the newest row is the one in use.
    """

    version = models.CharField(max_length=20, unique=True)  # hash of terms + idf
    terms = models.JSONField()  # index order
    idf = models.JSONField()
    papers = models.PositiveIntegerField()  # how many papers the fit read
    corpus = models.PositiveIntegerField()  # papers in the corpus at fit time
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        get_latest_by = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"tf-idf {self.version} ({len(self.terms)} terms, {self.papers} papers)"


# --- the reader's loop: libraries, ratings, ranking models, digests ----------------------------

def new_secret() -> str:
    """A URL-safe secret (~256 bits): the Atom feed's and the unsubscribe link's key."""
    import secrets

    return secrets.token_urlsafe(32)


class Library(models.Model):
    """A reader's named collection of papers (a tag, in arxiv-sanity-lite's words). Its papers
    are the positives of its ranking model; `keywords` make it a topic channel (Lbl2Vec-style:
    the keywords' embedding and the papers that match them seed the model)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="libraries")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    keywords = models.CharField(max_length=500, blank=True)
    is_public = models.BooleanField(default=False)  # readable by anyone with the link
    feed_token = models.CharField(max_length=64, unique=True, default=new_secret, editable=False)
    papers = models.ManyToManyField("search.Paper", through="LibraryPaper", related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped by every change the ranking model depends on (papers, keywords): part of the
    # model's version, so a stale model is seen without comparing paper lists.
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="library_name_per_owner"),
        ]
        verbose_name_plural = "libraries"

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"

    def keyword_list(self) -> list[str]:
        return [k.strip() for k in self.keywords.split(",") if k.strip()]


class LibraryPaper(models.Model):
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="entries")
    paper = models.ForeignKey("search.Paper", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-added_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["library", "paper"], name="paper_once_per_library"),
        ]


class Rating(models.Model):
    """Thumbs up (+1) or down (-1): positives and negatives of the reader's models."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="ratings")
    paper = models.ForeignKey("search.Paper", on_delete=models.CASCADE, related_name="+")
    value = models.SmallIntegerField()
    rated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "paper"], name="one_rating_per_paper"),
            models.CheckConstraint(condition=models.Q(value__in=[1, -1]), name="rating_is_plus_or_minus_one"),
        ]


class ReaderModel(models.Model):
    """A trained ranking model (recommend.ranking) of one library, or of a reader as a whole
    (every library and rating: library null). Trained by workers, read by the feed; `version`
    says what it was trained from, so the feed sees when it is stale and queues a retrain."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    library = models.OneToOneField(Library, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="ranking")
    version = models.CharField(max_length=40)
    kind = models.CharField(max_length=20)  # "linear" or "centroid"
    artifact = models.BinaryField()  # ranking.ReaderModel.to_bytes(): npz, never a pickle
    positives = models.PositiveIntegerField(default=0)
    negatives = models.PositiveIntegerField(default=0)
    trained_at = models.DateTimeField(auto_now=True)
    train_ms = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=models.Q(library__isnull=True),
                                    name="one_reader_model_per_user"),
        ]


class ReaderProfile(models.Model):
    """Per reader: digest frequency, when the feed was last opened ("new since your last
    visit") and the secret of the unsubscribe link."""

    class Digest(models.TextChoices):
        OFF = "off", "off"
        DAILY = "daily", "daily"
        WEEKLY = "weekly", "weekly"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="reader")
    digest = models.CharField(max_length=10, choices=Digest.choices, default=Digest.WEEKLY)
    digest_size = models.PositiveSmallIntegerField(default=5)  # papers per library
    feed_visited_at = models.DateTimeField(null=True, blank=True)
    previous_visit_at = models.DateTimeField(null=True, blank=True)
    unsubscribe_token = models.CharField(max_length=64, unique=True, default=new_secret,
                                         editable=False)

    def __str__(self) -> str:
        return f"reader {self.user}"


class Digest(models.Model):
    """One digest of one reader for one period ("2026-12-02" daily, "2026-W49" weekly). The
    unique period makes sending idempotent: a retried task or a restarted beat finds the row
    and sends nothing new. Its window starts where the reader's previous digest ended, so no
    paper added in between is skipped."""

    class Status(models.TextChoices):
        COMPOSED = "composed", "composed"  # items recorded, mail not yet accepted by the server
        SENT = "sent", "sent"
        EMPTY = "empty", "nothing new"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="digests")
    period = models.CharField(max_length=20)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPOSED)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-window_end", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "period"], name="one_digest_per_period"),
        ]

    def __str__(self) -> str:
        return f"digest {self.period} of {self.user} ({self.status})"


class DigestItem(models.Model):
    """A paper a digest suggested (never suggested again, never back in the feed)."""

    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="items")
    paper = models.ForeignKey("search.Paper", on_delete=models.CASCADE, related_name="+")
    library = models.ForeignKey(Library, on_delete=models.SET_NULL, null=True, related_name="+")
    rank = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["digest", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["digest", "paper"], name="paper_once_per_digest"),
        ]
