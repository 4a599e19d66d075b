import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the 'admin' superuser (password ADMIN_PASSWORD, default 'admin') if missing."

    def handle(self, *args, **options):
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            user = User.objects.create_superuser(
                "admin", "admin@localhost", os.environ.get("ADMIN_PASSWORD", "admin"))
            self.stdout.write("created superuser 'admin'")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"admin API token: {token.key}")
