"""Every forum page across the standing users, for an open, a restricted and a draft challenge."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mica.challenges.models import Challenge
from mica.forum.models import Attachment, Post, Report, Thread

from .test_forum import png_bytes

pytestmark = pytest.mark.django_db

STANDING = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}
PARTICIPANTS = {"rival", "participant"}


@pytest.fixture(autouse=True)
def no_account_age(settings):
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 0


@pytest.fixture
def forum(challenge, team, rival, participant, co_organizer):
    """A thread by the participant with an image, and a reply by the rival."""
    image = SimpleUploadedFile("x.png", png_bytes(), content_type="image/png")
    thread = Thread.start(challenge, participant, "Question", "Body", images=[(image, "A red square")])
    reply = thread.reply(rival, "Answer")
    return thread, thread.posts.first(), reply


def user_for(request, who):
    return None if who == "anonymous" else request.getfixturevalue(who)


def get_status(client, user, path):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(path).status_code


@pytest.mark.parametrize("who", STANDING)
@pytest.mark.parametrize("registration", ["open", "approval", "domains"])
def test_it_checks_access_to_reading(client, request, forum, who, registration):
    thread, first, _ = forum
    challenge = thread.challenge
    Challenge.objects.filter(pk=challenge.pk).update(registration=registration)
    user = user_for(request, who)
    reads = registration == "open" or who in ORGANIZERS | PARTICIPANTS
    expected = 200 if reads else 403
    image = Attachment.objects.get().uuid
    for path in (f"/forum/{challenge.slug}/", thread.get_absolute_url(), f"/forum/images/{image}/",
                 f"/forum/{challenge.slug}/?q=answer"):
        assert get_status(client, user, path) == expected, (path, who)


@pytest.mark.parametrize("who", STANDING)
def test_a_draft_forum_is_for_its_organizers_only(client, request, forum, who):
    thread, _, _ = forum
    Challenge.objects.filter(pk=thread.challenge_id).update(state=Challenge.State.DRAFT)
    expected = 200 if who in ORGANIZERS else 404
    assert get_status(client, user_for(request, who), thread.get_absolute_url()) == expected


@pytest.mark.parametrize("who", STANDING)
def test_it_checks_access_to_posting(client, request, forum, who):
    thread, first, _ = forum
    user = user_for(request, who)
    if user is not None:
        client.force_login(user)
    before = Post.objects.count()
    new = client.get("/forum/pneumonia/new/")
    client.post(f"/forum/pneumonia/threads/{thread.pk}/reply/", {"body": f"from {who}"})
    may_post = who in ORGANIZERS | PARTICIPANTS
    assert new.status_code == (200 if may_post else 302 if user is None else 403)
    assert Post.objects.count() == before + (1 if may_post else 0)


@pytest.mark.parametrize("who", STANDING)
def test_it_checks_access_to_moderation(client, request, forum, who):
    thread, first, reply = forum
    user = user_for(request, who)
    if user is not None:
        client.force_login(user)
    Report.objects.create(post=reply, reporter=thread.author, reason="Rude")
    moderates = who in ORGANIZERS
    queue = client.get("/forum/pneumonia/moderation/").status_code
    assert queue == (200 if moderates else 302 if user is None else 403)
    client.post(f"/forum/posts/{reply.pk}/moderate/", {"action": "hide", "reason": "Rude"})
    client.post(f"/forum/pneumonia/threads/{thread.pk}/lock/", {"on": "1"})
    client.post(f"/forum/reports/{Report.objects.get().pk}/dismiss/")
    reply.refresh_from_db()
    thread.refresh_from_db()
    assert (reply.hidden_at is not None) == moderates and thread.is_locked == moderates


@pytest.mark.parametrize("who", STANDING)
def test_it_checks_access_to_editing_and_reporting(client, request, forum, who):
    thread, first, _ = forum
    user = user_for(request, who)
    if user is not None:
        client.force_login(user)
    edit = client.post(f"/forum/posts/{first.pk}/edit/", {"body": "changed"})
    first.refresh_from_db()
    assert (first.body == "changed") == (who == "participant")  # the author alone
    assert edit.status_code == (302 if who == "participant" or user is None else 403)
    report = client.get(f"/forum/posts/{first.pk}/report/").status_code
    assert report == (302 if user is None else 200)


@pytest.mark.parametrize("who", STANDING)
def test_a_hidden_post_and_its_image_are_for_its_author_and_the_organizers(client, request, forum, organizer, who):
    thread, first, _ = forum
    first.hide(organizer, "Check this")
    user = user_for(request, who)
    sees = who in ORGANIZERS or who == "participant"
    image = Attachment.objects.get().uuid
    assert get_status(client, user, f"/forum/images/{image}/") == (200 if sees else 404)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert ("A red square" in page) == sees
