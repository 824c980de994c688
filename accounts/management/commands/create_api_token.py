from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import TokenError, api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line")

    def handle(self, *args: object, username: str, name: str, **options: object) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        try:
            _, raw = api_token_create(user=user, name=name)
        except TokenError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Token {name!r} for {username} (shown once; store it now):")
        self.stdout.write(raw)
