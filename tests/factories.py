import factory

from search.embedders import content_hash
from search.models import Paper


class PaperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Paper

    arxiv_id = factory.Sequence(lambda n: f"2501.{n:05d}")
    title = factory.Sequence(lambda n: f"Paper number {n} on graph neural networks")
    abstract = factory.Faker("paragraph", nb_sentences=5)
    authors = factory.LazyFunction(lambda: ["Ada Lovelace", "Alan Turing"])
    categories = factory.LazyFunction(lambda: ["cs.LG"])
    published = factory.Faker("date_between", start_date="-2y", end_date="today")
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.title, o.abstract))
