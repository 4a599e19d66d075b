from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("search", "0009_paper_source_url_web_only")]

    operations = [
        migrations.AddField(
            model_name="job", name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
