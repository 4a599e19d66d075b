"""Source URLs that are not web links (``javascript:``, ``data:`` ...) stored before ingestion
checked them are cleared: the paper page then links the canonical arXiv / DOI URL instead."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("search", "0008_paper_concepts")]

    operations = [
        migrations.RunSQL(
            r"UPDATE search_paper SET source_url = '' "
            r"WHERE source_url <> '' AND source_url !~* '^https?://[^\s/]+'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
