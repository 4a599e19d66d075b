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
