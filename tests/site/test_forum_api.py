"""The forum's API: the pages' rules (forum/access.py, the models) across the standing users,
for an open, a restricted and a draft challenge; moderation, locking, spam limits, Markdown;
images sent as multipart/form-data.

Bad images tried: one without its description, a blank description, a text file named .png, an
SVG, five images, images as JSON strings; each refused with the field or the file named, and
nothing stored (no thread, no post, no file)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from mica.challenges.models import Challenge
from mica.forum.models import Attachment, Post, Subscription, Thread

from .test_forum import image_upload, png_bytes
from .test_forum_access import ORGANIZERS, PARTICIPANTS, STANDING, user_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_account_age(settings):
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 0


@pytest.fixture
def forum(challenge, team, rival, participant, co_organizer):
    """A thread by the participant with an image, and a reply by the rival."""
    image = SimpleUploadedFile("x.png", png_bytes(), content_type="image/png")
    thread = Thread.start(challenge, participant, "Augmentation question", "Rotating radiographs?",
                          images=[(image, "A red square")])
    reply = thread.reply(rival, "Answer about **radiographs**")
    return thread, thread.posts.first(), reply


def api_as(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def threads_url(thread):
    return f"/api/v1/forum/{thread.challenge.slug}/threads/"


def posts_url(thread):
    return f"/api/v1/forum/{thread.challenge.slug}/threads/{thread.pk}/posts/"


# -- reading ------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", STANDING)
@pytest.mark.parametrize("registration", ["open", "approval", "domains"])
def test_reading_follows_the_challenges_registration(request, forum, who, registration):
    thread, _, _ = forum
    Challenge.objects.filter(pk=thread.challenge_id).update(registration=registration)
    api = api_as(user_for(request, who))
    reads = registration == "open" or who in ORGANIZERS | PARTICIPANTS
    for path in (threads_url(thread), f"{threads_url(thread)}{thread.pk}/", posts_url(thread),
                 f"/api/v1/forum/{thread.challenge.slug}/search/?q=radiographs"):
        response = api.get(path)
        assert response.status_code == (200 if reads else 403), (path, who)
    if reads:
        assert [row["title"] for row in api.get(threads_url(thread)).json()["results"]] == [thread.title]
        assert len(api.get(posts_url(thread)).json()["results"]) == 2
    else:
        assert "participants only" in response.json()["detail"]


@pytest.mark.parametrize("who", STANDING)
def test_a_draft_forum_is_for_its_organizers_only(request, forum, who):
    thread, _, _ = forum
    Challenge.objects.filter(pk=thread.challenge_id).update(state=Challenge.State.DRAFT)
    response = api_as(user_for(request, who)).get(posts_url(thread))
    assert response.status_code == (200 if who in ORGANIZERS else 404)


def test_a_thread_of_another_challenge_is_not_found_under_this_one(forum, organizer):
    thread, _, _ = forum
    other = Challenge.objects.create(slug="other", title="Other", state=Challenge.State.PUBLISHED,
                                     created_by=organizer)
    assert api_as(organizer).get(f"/api/v1/forum/{other.slug}/threads/{thread.pk}/posts/").status_code == 404


def test_a_post_is_given_as_the_page_shows_it(client, forum, organizer):
    thread, first, reply = forum
    organizer_post = thread.reply(organizer, "Use <script>alert(1)</script>[x](javascript:alert(1)) **AUC**")
    rows = api_as(organizer).get(posts_url(thread)).json()["results"]
    assert [row["id"] for row in rows] == [first.pk, reply.pk, organizer_post.pk]
    by_id = {row["id"]: row for row in rows}
    assert by_id[organizer_post.pk]["by_organizer"] and not by_id[reply.pk]["by_organizer"]
    html = by_id[organizer_post.pk]["body_html"]
    assert "<strong>AUC</strong>" in html and "<script" not in html and "javascript:" not in html
    client.force_login(organizer)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert html in page  # the very HTML the page shows
    image = by_id[first.pk]["attachments"][0]
    assert image["alt_text"] == "A red square" and (image["width"], image["height"]) == (40, 30)
    assert client.get(image["url"]).status_code == 200


@pytest.mark.parametrize("who", STANDING)
def test_a_hidden_post_is_for_its_author_and_the_organizers(request, forum, organizer, who):
    thread, first, _ = forum
    first.hide(organizer, "Check this")
    response = api_as(user_for(request, who)).get(posts_url(thread))
    rows = {row["id"]: row for row in response.json()["results"]}
    sees = who in ORGANIZERS or who == "participant"
    assert (first.pk in rows) == sees
    if sees:
        assert rows[first.pk]["moderation"] == {"action": "hidden", "by": organizer.username,
                                                "at": rows[first.pk]["moderation"]["at"], "reason": "Check this"}
        assert rows[first.pk]["body"] == "Rotating radiographs?"


def test_a_deleted_post_keeps_who_when_and_why_only(forum, organizer, outsider):
    thread, first, _ = forum
    first.delete_by_moderator(organizer, "Patient data")
    row = api_as(outsider).get(posts_url(thread)).json()["results"][0]
    assert row["id"] == first.pk and row["body"] == row["body_html"] == "" and row["attachments"] == []
    assert row["moderation"]["action"] == "deleted" and row["moderation"]["reason"] == "Patient data"


# -- search -------------------------------------------------------------------------------------
def test_search_finds_what_the_page_finds(client, forum, participant, organizer):
    thread, first, reply = forum
    other = Thread.start(thread.challenge, organizer, "Learning rates", "Try 1e-4.")
    api = api_as(participant)
    slug = thread.challenge.slug
    found = api.get(f"/api/v1/forum/{slug}/search/", {"q": "radiograph"}).json()["results"]
    assert {row["id"] for row in found} == {first.pk, reply.pk}
    assert {row["summary"] for row in found} == {"Rotating radiographs?", "Answer about radiographs"}
    # A title matches every post of its thread.
    by_title = api.get(f"/api/v1/forum/{slug}/search/", {"q": "learning"}).json()["results"]
    assert [row["thread"] for row in by_title] == [other.pk]
    reply.hide(organizer, "Rude")
    found = api.get(f"/api/v1/forum/{slug}/search/", {"q": "radiograph"}).json()["results"]
    assert [row["id"] for row in found] == [first.pk]
    client.force_login(participant)
    assert "1 post match" in client.get(f"/forum/{slug}/", {"q": "radiograph"}).content.decode()


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "   "}])
def test_search_without_words_is_refused_naming_q(forum, participant, query):
    thread, _, _ = forum
    response = api_as(participant).get(f"/api/v1/forum/{thread.challenge.slug}/search/", query)
    assert response.status_code == 400 and "q" in response.json()


# -- posting ------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", STANDING)
def test_posting_is_for_participants_and_organizers(request, forum, who):
    thread, _, _ = forum
    user = user_for(request, who)
    api = api_as(user)
    before = Post.objects.count()
    started = api.post(threads_url(thread), {"title": f"From {who}", "body": "Hello"}, format="json")
    replied = api.post(posts_url(thread), {"body": f"from {who}"}, format="json")
    may_post = who in ORGANIZERS | PARTICIPANTS
    expected = 201 if may_post else 401 if user is None else 403
    assert (started.status_code, replied.status_code) == (expected, expected), (started.content, replied.content)
    assert Post.objects.count() == before + (2 if may_post else 0)
    if may_post:
        assert replied.json()["by_organizer"] == (who in ORGANIZERS)
        assert started.json()["followed"] is True
        new = Thread.objects.get(pk=started.json()["id"])
        assert new.posts.get().body == "Hello" and new.author == user


def test_a_locked_thread_refuses_replies(forum, organizer, participant):
    thread, _, _ = forum
    thread.set_locked(True)
    for user in (participant, organizer):
        response = api_as(user).post(posts_url(thread), {"body": "Still here?"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["This thread is locked: no new replies."]}
    assert thread.posts.count() == 2


def test_the_spam_limits_hold(settings, forum, participant, organizer):
    thread, _, _ = forum
    settings.MICA_FORUM_POSTS_PER_HOUR = 2
    api = api_as(participant)
    assert api.post(posts_url(thread), {"body": "one more"}, format="json").status_code == 201  # 2 this hour
    response = api.post(posts_url(thread), {"body": "and another"}, format="json")
    assert response.status_code == 400 and "in the last hour" in response.json()["non_field_errors"][0]
    assert api_as(organizer).post(posts_url(thread), {"body": "organizers"}, format="json").status_code == 201
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 24
    participant.date_joined = timezone.now() - timedelta(hours=1)
    participant.save()
    response = api.post(threads_url(thread), {"title": "New", "body": "Hi"}, format="json")
    assert response.status_code == 400 and "New accounts" in response.json()["non_field_errors"][0]


@pytest.mark.parametrize(("body", "field"), [({"body": "No title"}, "title"), ({"title": "No body"}, "body"),
                                             ({"title": "x" * 201, "body": "Long title"}, "title"),
                                             ({"title": "Empty", "body": "  "}, "body"),
                                             ({"title": "Long", "body": "x" * (Post.MAX_BODY_CHARS + 1)}, "body")])
def test_a_bad_thread_is_refused_naming_the_field(forum, participant, body, field):
    thread, _, _ = forum
    response = api_as(participant).post(threads_url(thread), body, format="json")
    assert response.status_code == 400 and list(response.json()) == [field]


def test_announcements_are_the_organizers_and_tell_every_participant(forum, organizer, participant):
    thread, _, _ = forum
    refused = api_as(participant).post(threads_url(thread), {"title": "Hear", "body": "me", "announcement": True},
                                       format="json")
    assert refused.status_code == 400
    assert refused.json() == {"non_field_errors": ["Only organizers post announcements."]}
    made = api_as(organizer).post(threads_url(thread), {"title": "Deadline", "body": "moved", "announcement": True},
                                  format="json")
    assert made.status_code == 201 and made.json()["is_announcement"] and made.json()["pinned"]
    assert participant.notifications.filter(kind="announcement").count() == 1


def test_a_writeup_is_a_teams(forum, participant, organizer):
    thread, _, _ = forum
    made = api_as(participant).post(threads_url(thread), {"title": "Our solution", "body": "U-Net",
                                                          "writeup": True}, format="json")
    assert made.status_code == 201 and made.json()["writeup_team"] == "Team Paul"
    refused = api_as(organizer).post(threads_url(thread), {"title": "Mine", "body": "x", "writeup": True},
                                     format="json")
    assert refused.status_code == 400 and list(refused.json()) == ["writeup"]


# -- following ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", STANDING)
@pytest.mark.parametrize("registration", ["open", "approval"])
def test_following_is_for_logged_in_readers(request, forum, who, registration):
    thread, _, _ = forum
    Challenge.objects.filter(pk=thread.challenge_id).update(registration=registration)
    user = user_for(request, who)
    api = api_as(user)
    url = f"{threads_url(thread)}{thread.pk}/follow/"
    reads = registration == "open" or who in ORGANIZERS | PARTICIPANTS
    expected = 401 if user is None else 204 if reads else 403
    assert api.put(url).status_code == expected
    assert Subscription.objects.filter(thread=thread, user=user).exists() == (expected == 204)
    if expected == 204:
        assert api.get(f"{threads_url(thread)}{thread.pk}/").json()["followed"] is True
        assert api.delete(url).status_code == 204
        assert not Subscription.objects.filter(thread=thread, user=user).exists()
    else:
        assert api.delete(url).status_code == expected


def test_a_follower_is_told_of_replies(forum, outsider, organizer):
    thread, _, _ = forum
    api_as(outsider).put(f"{threads_url(thread)}{thread.pk}/follow/")
    api_as(organizer).post(posts_url(thread), {"body": "Organizers' answer"}, format="json")
    assert outsider.notifications.filter(kind="forum_reply").count() == 1


# -- images -------------------------------------------------------------------------------------
def test_a_thread_and_a_reply_carry_images_sent_as_multipart(client, forum, participant, organizer):
    thread, _, _ = forum
    response = api_as(participant).post(threads_url(thread), {
        "title": "With a figure", "body": "See the two figures.", "writeup": "false",
        "images": [image_upload("a.png"), image_upload("b.jpg", png_bytes(size=(20, 10), fmt="JPEG"), "image/jpeg")],
        "alt_texts": ["A red square", "A red strip, as a JPEG"]}, format="multipart")
    assert response.status_code == 201, response.content
    new = Thread.objects.get(pk=response.json()["id"])
    shown = api_as(participant).get(posts_url(new)).json()["results"][0]["attachments"]
    assert [(image["alt_text"], image["width"], image["height"]) for image in shown] == [
        ("A red square", 40, 30), ("A red strip, as a JPEG", 20, 10)]
    client.force_login(organizer)
    served = client.get(shown[1]["url"])
    assert served.status_code == 200 and served["Content-Type"] == "image/png"  # re-encoded

    response = api_as(organizer).post(posts_url(thread), {"body": "A reply with one", "images": [image_upload()],
                                                          "alt_texts": ["The answer's figure"]}, format="multipart")
    assert response.status_code == 201 and response.json()["attachments"][0]["alt_text"] == "The answer's figure"
    plain = api_as(organizer).post(posts_url(thread), {"body": "No image, as JSON"}, format="json")
    assert plain.status_code == 201 and plain.json()["attachments"] == []


@pytest.mark.parametrize(("images", "alt_texts", "field", "message"), [
    (["a.png", "b.png"], ["Only one described"], "alt_texts", "2 images and 1 descriptions"),
    (["a.png"], [" "], "alt_texts", "may not be blank"),
    (["notes.png"], ["Not an image"], "non_field_errors", "notes.png: not an image this forum accepts"),
    (["drawing.svg"], ["A drawing"], "non_field_errors", "drawing.svg: not an image this forum accepts"),
    (["a.png"] * 5, ["A square"] * 5, "images", "no more than 4"),
])
def test_bad_images_are_refused_naming_them_and_nothing_is_stored(forum, participant, images, alt_texts, field,
                                                                   message):
    thread, _, _ = forum
    contents = {"notes.png": b"these are notes, not pixels", "drawing.svg": b"<svg onload='alert(1)'></svg>"}
    uploads = [image_upload(name, contents.get(name)) for name in images]
    before = (Thread.objects.count(), Post.objects.count(), Attachment.objects.count())
    for url, body in ((threads_url(thread), {"title": "Figures", "body": "See"}), (posts_url(thread), {"body": "See"})):
        for upload in uploads:
            upload.seek(0)
        response = api_as(participant).post(url, {**body, "images": uploads, "alt_texts": alt_texts},
                                            format="multipart")
        assert response.status_code == 400 and message in str(response.json()[field]), response.content
    assert (Thread.objects.count(), Post.objects.count(), Attachment.objects.count()) == before


def test_images_are_files_not_json_strings(forum, participant):
    thread, _, _ = forum
    response = api_as(participant).post(posts_url(thread), {"body": "See", "images": ["aGVsbG8="], "alt_texts": ["x"]},
                                        format="json")
    assert response.status_code == 400 and "images" in response.json()


def test_a_described_image_before_an_undescribed_one_leaves_no_file(forum, participant):
    # The model checks every description before it stores any file (a rolled-back row would
    # leave its file behind in the storage).
    from django.core.exceptions import ValidationError as ModelValidationError

    from mica.core.storage import private_storage

    thread, _, _ = forum
    files = set(private_storage().listdir("forum")[1])
    with pytest.raises(ModelValidationError, match="Describe each image"):
        thread.reply(participant, "Two figures", images=[(image_upload("a.png"), "Described"), (image_upload("b.png"), "")])
    assert set(private_storage().listdir("forum")[1]) == files
