"""The forum: posting, sanitizing, images, moderation, reports, subscriptions, write-ups, spam limits."""

import io
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from mica.challenges.models import Challenge
from mica.forum.models import Attachment, Post, Report, Thread, writeup_links
from mica.notifications.models import Kind, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_account_age(settings):
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 0


def png_bytes(size=(40, 30), color=(200, 30, 30), fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def image_upload(name="scan.png", content=None, content_type="image/png"):
    return SimpleUploadedFile(name, content if content is not None else png_bytes(), content_type=content_type)


def start(challenge, user, body="Hello", **extra):
    return Thread.start(challenge, user, "A question", body, **extra)


# -- posting --------------------------------------------------------------------------------
def test_a_participant_starts_a_thread_and_an_organizer_reply_is_marked(client, challenge, team, participant,
                                                                        organizer):
    client.force_login(participant)
    response = client.post("/forum/pneumonia/new/", {"title": "Label noise?", "body": "Is `pneumonia` noisy?"})
    thread = Thread.objects.get()
    assert response.status_code == 302 and response["Location"] == thread.get_absolute_url()
    client.force_login(organizer)
    client.post(f"/forum/pneumonia/threads/{thread.pk}/reply/", {"body": "Somewhat."})
    page = client.get(thread.get_absolute_url()).content.decode()
    assert '<code>pneumonia</code>' in page
    assert page.count('class="badge organizer">organizer<') == 1
    assert Post.objects.get(body="Somewhat.").by_organizer


def test_an_outsider_cannot_post_and_nobody_posts_under_someone_else(client, challenge, outsider):
    client.force_login(outsider)
    assert client.post("/forum/pneumonia/new/", {"title": "Spam", "body": "Buy"}).status_code == 403
    with pytest.raises(ValidationError, match="Register"):
        start(challenge, outsider)
    assert not Thread.objects.exists()


def test_quoting_prefills_the_reply_and_editing_shows_edited(client, challenge, team, participant, teammate):
    thread = start(challenge, participant, body="First line\n\nSecond line")
    first = thread.posts.get()
    client.force_login(teammate)
    page = client.get(f"{thread.get_absolute_url()}?quote={first.pk}").content.decode()
    assert "&gt; **paul** wrote:\n&gt;\n&gt; First line" in page
    assert client.get(f"/forum/posts/{first.pk}/edit/").status_code == 403  # not the author
    client.force_login(participant)
    client.post(f"/forum/posts/{first.pk}/edit/", {"body": "Corrected"})
    first.refresh_from_db()
    assert first.body == "Corrected" and first.edited_at
    assert ">edited</span>" in client.get(thread.get_absolute_url()).content.decode()


@pytest.mark.parametrize("body, absent", [
    ("<script>alert(1)</script>", "<script"),
    ('<img src="/x.png" onerror="alert(1)">', "onerror"),
    ("[click](javascript:alert(1))", "javascript:"),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert(1)"),
    ('<iframe src="https://evil.example"></iframe>', "<iframe"),
    ("![pixel](https://tracker.example/p.png)", "tracker.example"),
    ('<svg onload="alert(1)"><circle/></svg>', "<svg"),
    ('<p style="background:url(javascript:alert(1))">x</p>', "style="),
])
def test_posts_are_sanitized_as_challenge_descriptions_are(client, challenge, team, participant, body, absent):
    thread = start(challenge, participant, body=body)
    page = client.get(thread.get_absolute_url()).content.decode()
    post_html = page.split('class="post-body">')[1].split("</div>")[0]
    assert absent.lower() not in post_html.lower()


def test_code_blocks_keep_their_text(client, challenge, team, participant):
    thread = start(challenge, participant, body="```python\nif a < b:\n    print('<b>')\n```")
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "<pre><code>if a &lt; b:\n    print('&lt;b&gt;')\n</code></pre>" in page


# -- images ---------------------------------------------------------------------------------
def test_an_image_is_re_encoded_stored_privately_and_served_only_to_readers(client, settings, challenge, team,
                                                                           participant, outsider):
    challenge.registration = Challenge.Registration.APPROVAL
    challenge.save()
    jpeg = png_bytes(fmt="JPEG")
    thread = start(challenge, participant, images=[(image_upload("x.jpg", jpeg, "image/jpeg"), "A chest X-ray")])
    attachment = Attachment.objects.get()
    assert attachment.file.path.startswith(settings.STORAGES["private"]["OPTIONS"]["location"])
    assert attachment.file.read()[:8] == b"\x89PNG\r\n\x1a\n"  # re-encoded: nothing of the upload's bytes kept
    client.force_login(participant)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert 'alt="A chest X-ray"' in page
    response = client.get(f"/forum/images/{attachment.uuid}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    client.force_login(outsider)  # approval registration: participants only
    assert client.get(f"/forum/images/{attachment.uuid}/").status_code == 403
    client.logout()
    assert client.get(f"/forum/images/{attachment.uuid}/").status_code == 403


SVG_WITH_SCRIPT = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML_AS_PNG = b"<html><script>alert(1)</script></html>"


@pytest.mark.parametrize("name, content, message", [
    ("evil.svg", SVG_WITH_SCRIPT, "not an image this forum accepts"),
    ("evil.png", SVG_WITH_SCRIPT, "not an image this forum accepts"),  # a name that lies about the type
    ("page.png", HTML_AS_PNG, "not an image this forum accepts"),
    ("truncated.png", png_bytes()[:60], "not an image this forum accepts"),
])
def test_a_file_that_is_not_an_accepted_image_is_refused_by_its_content(challenge, team, participant, name, content,
                                                                        message):
    with pytest.raises(ValidationError, match=message) as error:
        start(challenge, participant, images=[(image_upload(name, content), "An image")])
    assert name in str(error.value)
    assert not Thread.objects.exists() and not Attachment.objects.exists()


def test_an_image_over_the_limits_or_without_alt_text_is_refused(challenge, team, participant, settings):
    settings.MICA_FORUM_IMAGE_PIXELS = 100
    with pytest.raises(ValidationError, match="more than allowed"):
        start(challenge, participant, images=[(image_upload(), "Red")])
    settings.MICA_FORUM_IMAGE_PIXELS = 10**8
    settings.MICA_FORUM_IMAGE_BYTES = 10
    with pytest.raises(ValidationError, match="larger than"):
        start(challenge, participant, images=[(image_upload(), "Red")])
    settings.MICA_FORUM_IMAGE_BYTES = 10**8
    with pytest.raises(ValidationError, match="Describe each image"):
        start(challenge, participant, images=[(image_upload(), "  ")])


def test_the_svg_upload_through_the_page_is_refused_with_its_name(client, challenge, team, participant):
    client.force_login(participant)
    response = client.post("/forum/pneumonia/new/", {
        "title": "Look", "body": "See", "image": image_upload("evil.svg", SVG_WITH_SCRIPT, "image/svg+xml"),
        "image_alt": "A drawing"})
    assert response.status_code == 200 and not Thread.objects.exists()
    assert "evil.svg: not an image this forum accepts" in response.content.decode()


# -- moderation -----------------------------------------------------------------------------
def test_organizers_hide_and_delete_posts_with_a_reason_kept(client, challenge, team, participant, rival, organizer):
    thread = start(challenge, participant, body="Leaked labels at http://example.org")
    post = thread.posts.get()
    client.force_login(rival)
    assert client.post(f"/forum/posts/{post.pk}/moderate/", {"action": "hide", "reason": "x"}).status_code == 403
    client.force_login(organizer)
    client.post(f"/forum/posts/{post.pk}/moderate/", {"action": "hide", "reason": ""})
    post.refresh_from_db()
    assert post.hidden_at is None  # no reason, no moderation
    client.post(f"/forum/posts/{post.pk}/moderate/", {"action": "hide", "reason": "Possible leak"})
    client.force_login(rival)
    assert "Leaked labels" not in client.get(thread.get_absolute_url()).content.decode()
    client.force_login(participant)  # the author still sees it, marked
    assert "hidden by olivia: Possible leak" in client.get(thread.get_absolute_url()).content.decode()
    client.force_login(organizer)
    client.post(f"/forum/posts/{post.pk}/moderate/", {"action": "delete", "reason": "Leaked data"})
    post.refresh_from_db()
    assert post.body == "" and post.deleted_at and post.moderation_reason == "Leaked data"
    assert post.moderated_by == organizer


def test_a_report_reaches_the_moderation_queue_and_is_resolved_there(client, challenge, team, participant, rival,
                                                                     organizer, co_organizer):
    post = start(challenge, participant, body="Rude words").posts.get()
    client.force_login(rival)
    assert client.get("/forum/pneumonia/moderation/").status_code == 403
    client.post(f"/forum/posts/{post.pk}/report/", {"reason": "Insulting"})
    client.post(f"/forum/posts/{post.pk}/report/", {"reason": "Again"})  # once per reader
    assert Report.objects.count() == 1
    client.force_login(co_organizer)
    queue = client.get("/forum/pneumonia/moderation/").content.decode()
    assert "Insulting" in queue and "Rude words" in queue
    assert "1 report" in client.get("/forum/pneumonia/").content.decode()
    client.post(f"/forum/posts/{post.pk}/moderate/", {"action": "hide", "reason": "Rude", "next": "queue"})
    assert Report.objects.get().resolved_by == co_organizer
    assert "No open report" in client.get("/forum/pneumonia/moderation/").content.decode()


def test_a_locked_thread_takes_no_reply_and_pinning_puts_it_first(client, challenge, team, participant, organizer):
    older = start(challenge, participant)
    newer = start(challenge, participant)
    client.force_login(organizer)
    client.post(f"/forum/pneumonia/threads/{older.pk}/pin/", {"on": "1"})
    client.post(f"/forum/pneumonia/threads/{older.pk}/lock/", {"on": "1"})
    assert list(Thread.objects.filter(challenge=challenge)) == [older, newer]
    client.force_login(participant)
    client.post(f"/forum/pneumonia/threads/{older.pk}/reply/", {"body": "Late"})
    assert older.posts.count() == 1
    assert client.post(f"/forum/pneumonia/threads/{older.pk}/lock/", {"on": "0"}).status_code == 403


# -- subscriptions and announcements --------------------------------------------------------
def test_a_reply_tells_the_threads_followers_but_not_its_author(client, challenge, team, participant, teammate, rival):
    thread = start(challenge, participant)
    thread.reply(rival, "Me too")
    assert [n.user for n in Notification.objects.filter(kind=Kind.FORUM_REPLY)] == [participant]
    client.force_login(teammate)
    client.post(f"/forum/pneumonia/threads/{thread.pk}/subscribe/", {"on": "1"})
    thread.reply(participant, "Thanks")
    told = sorted(n.user.username for n in Notification.objects.filter(kind=Kind.FORUM_REPLY))
    assert told == ["paul", "rita", "tara"]


def test_an_announcement_is_pinned_and_tells_every_participant(challenge, team, participant, rival, organizer,
                                                                outsider):
    with pytest.raises(ValidationError, match="Only organizers"):
        start(challenge, participant, announcement=True)
    thread = start(challenge, organizer, body="The deadline moved.", announcement=True)
    assert thread.pinned
    told = sorted(Notification.objects.filter(kind=Kind.ANNOUNCEMENT).values_list("user__username", flat=True))
    assert told == ["paul", "rita", "tara"]


# -- write-ups ------------------------------------------------------------------------------
def test_a_teams_write_up_is_linked_from_the_leaderboard(client, challenge, phase, team, participant, rival):
    with pytest.raises(ValidationError, match="team's members"):
        start(challenge, rival, writeup_team=team)
    client.force_login(participant)
    client.post("/forum/pneumonia/new/", {"title": "Our solution", "body": "An ensemble.", "writeup": "on"})
    thread = Thread.objects.get()
    assert thread.writeup_team == team
    assert writeup_links(challenge) == {"Team Paul": thread.get_absolute_url()}
    thread.posts.get().hide(challenge.created_by, "Spoiler")
    assert writeup_links(challenge) == {}


# -- spam -----------------------------------------------------------------------------------
def test_new_accounts_wait_and_fast_posters_are_slowed(challenge, team, participant, organizer, settings):
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 24
    with pytest.raises(ValidationError, match="New accounts can post after 24 hours"):
        start(challenge, participant)
    start(challenge, organizer)  # organizers are not limited
    participant.date_joined = timezone.now() - timedelta(days=2)
    participant.save()
    settings.MICA_FORUM_POSTS_PER_HOUR = 2
    thread = start(challenge, participant)
    thread.reply(participant, "two")
    with pytest.raises(ValidationError, match="posted 2 times in the last hour"):
        thread.reply(participant, "three")


# -- search ---------------------------------------------------------------------------------
def test_search_finds_words_by_their_stem_in_titles_and_posts(client, challenge, team, participant, organizer,
                                                              rival):
    Thread.start(challenge, participant, "Augmentations that helped", "Rotating the radiographs by 10 degrees.")
    Thread.start(challenge, participant, "Unrelated", "Learning rates.")
    hidden = Thread.start(challenge, rival, "Spam", "radiograph spam")
    hidden.posts.get().hide(organizer, "spam")
    client.force_login(participant)
    page = client.get("/forum/pneumonia/", {"q": "radiograph rotation"}).content.decode()
    assert "Augmentations that helped" in page and "Unrelated" not in page  # stems: rotating ~ rotation
    assert "1 post match" in page  # the hidden post is not found by those who cannot see it
    title_hit = client.get("/forum/pneumonia/", {"q": "augmentation"}).content.decode()
    assert "1 post match" in title_hit
    client.force_login(organizer)
    assert "2 posts match" in client.get("/forum/pneumonia/", {"q": "radiograph"}).content.decode()
    weird = client.get("/forum/pneumonia/", {"q": "\"unclosed -quote & | ! :*"})
    assert weird.status_code == 200  # websearch syntax never raises on user input


def test_pages_of_threads_and_posts(client, challenge, team, participant, organizer):
    thread = start(challenge, organizer)
    for n in range(45):
        Post.objects.create(thread=thread, author=organizer, body=f"reply number {n}", by_organizer=True)
    last = thread.posts.last()
    page = client.get(last.get_absolute_url()).content.decode()
    assert "Page 3 of 3" in page and f'id="post-{last.pk}"' in page
    assert re.search(r"Page 1 of 3", client.get(thread.get_absolute_url()).content.decode())


def test_search_without_postgresql_matches_substrings(client, challenge, team, participant, monkeypatch):
    """`make demo` runs on SQLite: the same page, a plain case-insensitive substring match."""
    from django.db import connection

    Thread.start(challenge, participant, "Augmentations", "Rotating radiographs.")
    Thread.start(challenge, participant, "Other", "Learning rates.")
    monkeypatch.setattr(connection, "vendor", "sqlite")
    page = client.get("/forum/pneumonia/", {"q": "RADIOGRAPH"}).content.decode()
    assert "1 post match" in page and "Augmentations" in page


@pytest.mark.parametrize("query", ["post=99999999999999999999999", "quote=99999999999999999999999", "post=-1",
                                   "quote=abc", "page=999", "page=x"])
def test_odd_query_strings_open_the_thread(client, challenge, team, participant, query):
    thread = start(challenge, participant)
    client.force_login(participant)
    assert client.get(f"{thread.get_absolute_url()}?{query}").status_code == 200


def test_a_reply_notification_quotes_the_new_text_only_as_plain_text(challenge, team, participant, rival):
    thread = start(challenge, participant, body="Original question")
    thread.reply(rival, "> **paul** wrote:\n> Original question\n\nUse **AUC** if a < b <script>x()</script>")
    body = Notification.objects.get(kind=Kind.FORUM_REPLY).body
    assert body == "rita wrote:\n\nUse AUC if a < b"


@pytest.mark.parametrize("moderation", ["hide", "delete_by_moderator"])
def test_a_moderated_reply_is_no_longer_quoted_by_its_notifications(challenge, team, participant, rival, organizer,
                                                                      moderation):
    thread = start(challenge, participant, body="Original question")
    spam = thread.reply(rival, "Buy cheap GPUs here")
    other = thread.reply(rival, "A real answer")
    getattr(spam, moderation)(organizer, "Advertising")
    bodies = dict(Notification.objects.filter(kind=Kind.FORUM_REPLY).values_list("url", "body"))
    assert bodies[spam.get_absolute_url()] == "rita wrote a reply that the organizers have since hidden or removed."
    assert bodies[other.get_absolute_url()] == "rita wrote:\n\nA real answer"
