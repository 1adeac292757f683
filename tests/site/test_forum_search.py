"""The forum search's GIN indexes: used by the search's own queries on PostgreSQL, and a migration
that leaves SQLite (`make demo`) alone."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mica.forum.models import Post, Thread

from .test_forum_api import forum, no_account_age  # noqa: F401 (fixtures)
from .test_settings import run_django

pytestmark = pytest.mark.django_db

@pytest.mark.skipif(connection.vendor != "postgresql", reason="GIN indexes are PostgreSQL's")
def test_the_search_uses_the_gin_indexes(forum, participant):
    """With a forum large enough for an index to pay, EXPLAIN of the very queries the search runs
    names both indexes of migration 0002: their expressions are the search's."""
    thread, _, _ = forum
    author = thread.author
    threads = Thread.objects.bulk_create([Thread(challenge=thread.challenge, author=author, title=f"Topic {n}")
                                          for n in range(600)])
    Post.objects.bulk_create([Post(thread=threads[n % 600], author=author, body=f"Filler text number {n}")
                              for n in range(6000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE forum_post")
        cursor.execute("ANALYZE forum_thread")
        with CaptureQueriesContext(connection) as queries:
            found = list(Post.found_in(thread.challenge, participant, "radiographs"))
        plans = []
        for query in queries.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    assert {post.pk for post in found} == set(thread.posts.values_list("pk", flat=True))
    assert any("forum_thread_title_search" in plan for plan in plans), plans
    assert any("forum_post_body_search" in plan for plan in plans), plans


def test_a_fresh_sqlite_database_migrates(tmp_path):
    """The embedded default (no DATABASE_URL: SQLite under MICA_VAR_DIR) runs every migration,
    the forum's index migration doing nothing there."""
    done = run_django(["migrate", "--no-input"], DEBUG="1", MICA_VAR_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Applying forum.0002_search_indexes... OK" in done.stdout
    assert (tmp_path / "mica.sqlite3").exists()
