"""A minimal Django project, run in a subprocess by test_integrations_django.py (Django's
settings are process-wide): ``python django_app.py DB_URL SCENARIO`` prints one JSON line.

Scenarios: ``commit`` and ``rollback`` (an ``atomic()`` block that enqueues beside its own
row), ``autocommit`` (outside any block), ``using`` (the module's ``enqueue(using=)``),
``nested`` (a savepoint rolled back inside a committed block), ``wake`` (when the
supervisors' wake-up arrives: inside the block, or after it commits).
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlsplit

import django
from django.conf import settings


def _database(db_url: str) -> dict:
    if db_url.startswith("sqlite"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": db_url.split("://", 1)[1][1:]}
    parts = urlsplit(db_url)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "", "HOST": parts.hostname or "",
            "PORT": str(parts.port or "")}  # fmt: skip


def main(db_url: str, scenario: str) -> dict:
    settings.configure(DATABASES={"default": _database(db_url)}, USE_TZ=True)
    django.setup()
    from app_sessions import WakeWatch
    from django.db import connection, transaction

    import jobtui
    from jobtui.integrations import django as integration

    class Refused(Exception):
        pass

    def order(item: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders (item) VALUES (%s)", [item])

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS orders")  # PostgreSQL keeps it between tests
        cursor.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)"
                       if connection.vendor == "sqlite" else
                       "CREATE TABLE orders (id SERIAL PRIMARY KEY, item TEXT)")  # fmt: skip
    out: dict = {}
    if scenario == "commit":
        with transaction.atomic():
            order("book")
            task = os.environ.get("JOBTUI_TEST_TASK", "shop.ship")  # one a supervisor runs
            args = json.loads(os.environ.get("JOBTUI_TEST_ARGS", "[1]"))
            out["job"] = jobtui.enqueue(task, args=args, session=connection).id
    elif scenario == "rollback":
        try:
            with transaction.atomic():
                order("pen")
                out["job"] = jobtui.enqueue("shop.ship", args=[2], session=connection).id
                raise Refused
        except Refused:
            pass
    elif scenario == "autocommit":
        out["job"] = jobtui.enqueue("shop.ship", args=[3], session=connection).id
    elif scenario == "using":
        with transaction.atomic():
            out["job"] = integration.enqueue("shop.ship", args=[4], using="default").id
    elif scenario == "nested":
        with transaction.atomic():
            out["job"] = jobtui.enqueue("shop.ship", args=[5], session=connection).id
            try:
                with transaction.atomic():
                    out["dropped"] = jobtui.enqueue("shop.ship", args=[6], session=connection).id
                    raise Refused
            except Refused:
                pass
    elif scenario == "wake":
        watch = WakeWatch(db_url)
        with transaction.atomic():
            out["job"] = jobtui.enqueue("shop.ship", args=[7], session=connection).id
            out["inside"] = watch.received(timeout=0.3)
        out["after"] = watch.received(timeout=5)
        try:
            with transaction.atomic():
                jobtui.enqueue("shop.ship", args=[8], session=connection)
                raise Refused
        except Refused:
            pass
        out["after_rollback"] = watch.received(timeout=0.3)
        watch.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM orders")
        out["orders"] = cursor.fetchone()[0]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
