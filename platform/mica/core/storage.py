from django.core.files.storage import storages


def private_storage():
    """The storage of hidden files (truth, submissions, uploads, images): it has no URL, so
    only views that check permission can serve what it holds."""
    return storages["private"]
