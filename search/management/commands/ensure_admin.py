import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = ("Create the 'admin' superuser if missing: password ADMIN_PASSWORD, else 'admin' in "
            "development (DEBUG on) and a generated one, printed once, in production.")

    def handle(self, *args, **options):
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is not None:
            # the token and password are shown when created, never again (logs are not secret
            # stores); `manage.py drf_create_token -r admin` makes a new token
            self.stdout.write("superuser 'admin' exists")
            return
        password = os.environ.get("ADMIN_PASSWORD", "")
        generated = not password and not settings.DEBUG
        if generated:
            password = secrets.token_urlsafe(18)
        user = User.objects.create_superuser("admin", "admin@localhost", password or "admin")
        token = Token.objects.create(user=user)
        if generated:
            self.stdout.write(f"created superuser 'admin' with password {password} "
                              "(shown once; change it in the admin)")
        elif password:
            self.stdout.write("created superuser 'admin' (password from ADMIN_PASSWORD)")
        else:
            self.stdout.write("created superuser 'admin' with password 'admin' (development "
                              "only: DEBUG is on)")
        self.stdout.write(f"admin API token: {token.key} (shown once)")
