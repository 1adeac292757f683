"""GIN indexes for the forum's full-text search, on PostgreSQL only.

Each index is built from the very expression the search filters by (BODY_VECTOR, TITLE_VECTOR
in mica.forum.models), so the planner can use it. SQLite (`make demo`) searches by substring
and gets nothing here. The indexes are not in the models' Meta: Django would then create them
on SQLite too, where GIN does not exist.
"""

from django.contrib.postgres.indexes import GinIndex
from django.db import migrations

from mica.forum.models import BODY_VECTOR, TITLE_VECTOR

INDEXES = [("Post", GinIndex(BODY_VECTOR, name="forum_post_body_search")),
           ("Thread", GinIndex(TITLE_VECTOR, name="forum_thread_title_search"))]


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in INDEXES:
        schema_editor.add_index(apps.get_model("forum", model_name), index)


def remove_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in INDEXES:
        schema_editor.remove_index(apps.get_model("forum", model_name), index)


class Migration(migrations.Migration):
    dependencies = [("forum", "0001_initial")]

    operations = [migrations.RunPython(add_indexes, remove_indexes)]
