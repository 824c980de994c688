import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create a first admin if there is no superuser yet, and say how to log in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args: object, username: str, url: str, **options: object) -> None:
        if settings.KEY_ENCRYPTION_KEYS_FROM_FILE:
            self.stderr.write(
                "WARNING: KEY_ENCRYPTION_KEYS is not set, so provider keys are encrypted with a key generated "
                f"into {settings.KEY_ENCRYPTION_KEYS_FILE}. Back that file up (without it stored keys cannot be "
                "read) or set KEY_ENCRYPTION_KEYS in the environment."
            )
        users = get_user_model().objects
        admin = users.filter(is_superuser=True).order_by("pk").first()
        if admin is not None:
            self.stdout.write(
                f"Log in at {url} as {admin.get_username()!r} "
                f"(forgot the password? python manage.py changepassword {admin.get_username()})."
            )
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        bar = "=" * 72
        self.stdout.write(
            f"{bar}\nCreated the first admin.\n  URL:      {url}\n  user:     {username}\n"
            f"  password: {password}\nIt is shown this once; change it with "
            f"`python manage.py changepassword {username}`.\n"
            f"Data lives in {settings.VAR_DIR}.\n{bar}"
        )
