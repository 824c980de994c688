from django.core.management.base import BaseCommand, CommandError

from apikeys.services import apikeys_rotate
from providers.crypto import KeyringError


class Command(BaseCommand):
    help = "Re-encrypt every stored provider key under the newest key in KEY_ENCRYPTION_KEYS."

    def handle(self, *args: object, **options: object) -> None:
        try:
            rotated, current, unreadable = apikeys_rotate()
        except KeyringError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Re-encrypted {rotated} key(s); {current} already used the newest key.")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} key(s) could not be decrypted with any configured key (ids "
                f"{', '.join(map(str, unreadable))}); their owners must re-enter them."
            )
