from django.conf import settings
from django.core.management.base import BaseCommand

from codegen.sandbox import sandbox_env_prepare, sandbox_unavailable_reason


class Command(BaseCommand):
    help = "Build the sandbox's Python environment (requirements-sandbox.txt) for generated backends' tests."

    def handle(self, *args: object, **options: object) -> None:
        built = sandbox_env_prepare(
            env_dir=settings.CODEGEN_SANDBOX_ENV, requirements=settings.CODEGEN_SANDBOX_REQUIREMENTS
        )
        self.stdout.write(f"Sandbox environment {'built' if built else 'up to date'}: {settings.CODEGEN_SANDBOX_ENV}")
        reason = sandbox_unavailable_reason(env_dir=settings.CODEGEN_SANDBOX_ENV)
        if reason:
            self.stderr.write(self.style.WARNING(reason))
