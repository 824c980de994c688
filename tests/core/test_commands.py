from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_ensure_admin_creates_one_and_prints_how_to_log_in() -> None:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    text = out.getvalue()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and "user:     admin" in text
    password = text.split("password: ")[1].split()[0]
    assert admin.check_password(password)


def test_ensure_admin_leaves_an_existing_admin_alone() -> None:
    User.objects.create_superuser("root", password="x-long-password")
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert User.objects.filter(is_superuser=True).count() == 1
    assert "'root'" in out.getvalue() and "password:" not in out.getvalue()
