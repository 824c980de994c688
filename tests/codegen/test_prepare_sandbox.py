"""`manage.py prepare_sandbox`, which `make run` and `make test` call: quick when the stamp matches."""

from io import StringIO
from pathlib import Path

from django.core.management import call_command

from codegen.sandbox import STAMP_NAME, sandbox_env_ready


def test_an_environment_that_matches_its_stamp_is_left_alone(sandbox_env: Path) -> None:
    stamp = (sandbox_env / STAMP_NAME).stat().st_mtime_ns
    out = StringIO()
    call_command("prepare_sandbox", stdout=out, stderr=StringIO())
    assert f"Sandbox environment up to date: {sandbox_env}" in out.getvalue()
    assert (sandbox_env / STAMP_NAME).stat().st_mtime_ns == stamp


def test_a_changed_requirements_file_means_the_environment_is_stale(sandbox_env: Path, tmp_path: Path) -> None:
    changed = tmp_path / "requirements-sandbox.txt"
    changed.write_text("pytest==9.2.0\n")
    assert sandbox_env_ready(env_dir=sandbox_env, requirements=changed) is False
    assert sandbox_env_ready(env_dir=tmp_path / "none", requirements=changed) is False
