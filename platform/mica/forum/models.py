"""A forum per challenge: threads of Markdown posts, image attachments, moderation, reports.

Posts are Markdown rendered through mica.core.markdown (the same sanitizer as challenge
descriptions). Moderation never loses what happened: a hidden post is kept for its author and
the organizers, a deleted post keeps who deleted it, when and why (its text is removed).
"""

import html
import io
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import Truncator
from PIL import Image, UnidentifiedImageError

from mica.core.markdown import render_markdown
from mica.core.storage import private_storage
from mica.notifications.models import Kind, Notification, notify, participants_of


# The full-text expressions the search filters by, and the GIN indexes of migration 0002 are
# built from: an index serves a query only when both hold the very same expression.
SEARCH_CONFIG = "english"
BODY_VECTOR = SearchVector("body", config=SEARCH_CONFIG)
TITLE_VECTOR = SearchVector("title", config=SEARCH_CONFIG)


class ThreadQuerySet(models.QuerySet):
    def of(self, challenge):
        """A challenge's threads, pinned first then by last post, as the list shows them, each
        with `n_posts`: its posts that everyone sees (neither hidden nor deleted)."""
        shown = models.Q(posts__hidden_at__isnull=True, posts__deleted_at__isnull=True)
        return (self.filter(challenge=challenge).select_related("challenge", "author", "writeup_team")
                .annotate(n_posts=models.Count("posts", filter=shown))
                .order_by(*self.model._meta.ordering))  # a query that counts drops Meta.ordering


class Thread(models.Model):
    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="forum_threads")
    title = models.CharField(max_length=200)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_post_at = models.DateTimeField(default=timezone.now)
    pinned = models.BooleanField(default=False)
    is_announcement = models.BooleanField(default=False)
    locked_at = models.DateTimeField(null=True, blank=True)
    # A team's solution write-up, linked from the final leaderboard.
    writeup_team = models.ForeignKey("challenges.Team", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="writeups")

    objects = ThreadQuerySet.as_manager()

    class Meta:
        ordering = ["-pinned", "-last_post_at", "-pk"]
        indexes = [models.Index(fields=["challenge", "-pinned", "-last_post_at"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("forum:thread", args=[self.challenge.slug, self.pk])

    @property
    def is_locked(self):
        return self.locked_at is not None

    @classmethod
    @transaction.atomic
    def start(cls, challenge, author, title, body, *, announcement=False, writeup_team=None, images=()):
        """Opens a thread with its first post; an announcement is pinned and tells every participant."""
        check_may_post(challenge, author)
        is_organizer = challenge.is_organizer(author)
        if announcement and not is_organizer:
            raise ValidationError("Only organizers post announcements.")
        if writeup_team is not None and not writeup_team.has_member(author):
            raise ValidationError("Only a team's members post its write-up.")
        thread = cls.objects.create(challenge=challenge, author=author, title=title, is_announcement=announcement,
                                    pinned=announcement, writeup_team=writeup_team)
        post = Post.objects.create(thread=thread, author=author, body=body, by_organizer=is_organizer)
        Attachment.attach_all(post, author, images)
        Subscription.objects.get_or_create(thread=thread, user=author)
        if announcement:
            notify(participants_of(challenge), Kind.ANNOUNCEMENT, f"{challenge.title}: {title}", excerpt(body),
                   url=thread.get_absolute_url(), challenge=challenge)
        return thread

    @transaction.atomic
    def reply(self, author, body, images=()):
        """Adds a post and tells the thread's subscribers (not the author)."""
        locked = type(self).objects.select_for_update().get(pk=self.pk)
        if locked.is_locked:
            raise ValidationError("This thread is locked: no new replies.")
        challenge = self.challenge
        check_may_post(challenge, author)
        post = Post.objects.create(thread=self, author=author, body=body, by_organizer=challenge.is_organizer(author))
        Attachment.attach_all(post, author, images)
        type(self).objects.filter(pk=self.pk).update(last_post_at=post.created_at)
        followers = [s.user for s in self.subscriptions.exclude(user=author).select_related("user")]
        notify(followers, Kind.FORUM_REPLY, f"{challenge.title}: new reply in {self.title!r}",
               f"{author.username} wrote:\n\n{excerpt(body)}", url=post.get_absolute_url(), challenge=challenge)
        Subscription.objects.get_or_create(thread=self, user=author)
        return post

    def posts_shown_to(self, user):
        """The thread's posts as its page and the API show them to this user."""
        return (self.posts.shown_to(user, self.challenge).select_related("author", "moderated_by")
                .prefetch_related("attachments"))

    def is_followed_by(self, user):
        return user.is_authenticated and self.subscriptions.filter(user=user).exists()

    def set_followed(self, user, follow):
        """Any reader who is logged in follows a thread (replies notify them) or stops."""
        if follow:
            Subscription.objects.get_or_create(thread=self, user=user)
        else:
            Subscription.objects.filter(thread=self, user=user).delete()

    def set_locked(self, locked):
        self.locked_at = timezone.now() if locked else None
        self.save(update_fields=["locked_at"])

    def set_pinned(self, pinned):
        self.pinned = pinned
        self.save(update_fields=["pinned"])


def excerpt(markdown_text, length=600):
    """A post as plain text for a notification: what the author wrote (quoted lines left out),
    rendered and sanitized, its tags removed, cut at `length` characters."""
    own = "\n".join(line for line in markdown_text.splitlines() if not line.lstrip().startswith(">"))
    return Truncator(html.unescape(strip_tags(render_markdown(own))).strip()).chars(length)


def writeup_links(challenge):
    """{team name: URL of its latest solution write-up} for the leaderboard page to link to (a
    leaderboard row names its team; names are unique within a challenge). A write-up with no
    post left that everyone sees is not linked."""
    threads = (Thread.objects.filter(challenge=challenge, writeup_team__isnull=False)
               .filter(posts__in=Post.objects.filter(hidden_at__isnull=True, deleted_at__isnull=True))
               .select_related("writeup_team", "challenge").distinct().order_by("created_at"))
    return {thread.writeup_team.name: thread.get_absolute_url() for thread in threads}


def check_may_post(challenge, user):
    """Who may post: participants and organizers of the challenge (site staff too); accounts
    older than MICA_FORUM_MIN_ACCOUNT_AGE_HOURS, at most MICA_FORUM_POSTS_PER_HOUR posts an hour.
    Organizers are not limited."""
    if challenge.is_organizer(user):
        return
    if not challenge.is_participant(user):
        raise ValidationError("Register for the challenge to post in its forum.")
    min_age = timedelta(hours=settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS)
    if timezone.now() - user.date_joined < min_age:
        raise ValidationError(f"New accounts can post after {settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS} hours.")
    recent = Post.objects.filter(author=user, created_at__gte=timezone.now() - timedelta(hours=1)).count()
    if recent >= settings.MICA_FORUM_POSTS_PER_HOUR:
        raise ValidationError(f"You posted {recent} times in the last hour, the most allowed; try again later.")


class PostQuerySet(models.QuerySet):
    def shown_to(self, user, challenge):
        """Organizers see hidden posts; authors see their own; deleted posts show as a notice."""
        if challenge.is_organizer(user):
            return self
        if user.is_authenticated:
            return self.filter(models.Q(hidden_at__isnull=True) | models.Q(author=user))
        return self.filter(hidden_at__isnull=True)

    def search(self, text):
        """PostgreSQL full-text search over the post and its thread's title, best first; a
        plain substring match on SQLite (`make demo`).

        A post matches when its text or its thread's title does. The two are matched apart,
        each by an expression that a GIN index covers (BODY_VECTOR on forum_post, TITLE_VECTOR
        on forum_thread; migration 0002): the few threads whose title matches are found first,
        so the posts' condition is "body matches or thread in (these ids)", both on forum_post,
        which PostgreSQL answers from the GIN index and the thread index together."""
        live = self.filter(deleted_at__isnull=True)
        if connection.vendor != "postgresql":
            return live.filter(models.Q(body__icontains=text) | models.Q(thread__title__icontains=text))
        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        titled = list(Thread.objects.alias(title_vector=TITLE_VECTOR).filter(title_vector=query)
                      .filter(pk__in=live.values("thread_id")).values_list("pk", flat=True))
        weighted = SearchVector("thread__title", weight="A", config=SEARCH_CONFIG) + SearchVector(
            "body", weight="B", config=SEARCH_CONFIG)
        return (live.alias(body_vector=BODY_VECTOR)
                .filter(models.Q(body_vector=query) | models.Q(thread_id__in=titled))
                .annotate(rank=SearchRank(weighted, query)).order_by("-rank", "-created_at"))


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="forum_posts")
    body = models.TextField(help_text="Markdown.")
    # Whether the author organized the challenge when posting: the post is marked as theirs.
    by_organizer = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    hidden_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    moderated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    moderation_reason = models.TextField(blank=True)

    MAX_BODY_CHARS = 50000

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["author", "created_at"])]

    def get_absolute_url(self):
        return f"{self.thread.get_absolute_url()}?post={self.pk}#post-{self.pk}"

    @classmethod
    def found_in(cls, challenge, user, text):
        """The posts of a challenge's forum matching `text` that this user may read, best first."""
        return (cls.objects.filter(thread__challenge=challenge).shown_to(user, challenge).search(text)
                .select_related("thread__challenge", "author"))

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    def summary(self):
        """The post as a search result shows it: plain text (rendered, sanitized, tags removed), short."""
        return excerpt(self.body, 300)

    def quoted(self):
        """The post as a Markdown quote, for a reply. Fenced code becomes indented code, the
        kind of code block Markdown keeps inside a quote."""
        lines, in_code = [f"**{self.author.username}** wrote:", ""], False
        for line in self.body.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                in_code = not in_code
                lines.append("")
                continue
            lines.append(f"    {line}" if in_code else line)
        return "\n".join(f"> {line}" if line else ">" for line in lines) + "\n\n"

    def edit(self, user, body):
        if user.pk != self.author_id:
            raise ValidationError("Only the author edits a post.")
        if self.is_deleted or self.thread.is_locked:
            raise ValidationError("This post can no longer be edited.")
        self.body, self.edited_at = body, timezone.now()
        self.save(update_fields=["body", "edited_at"])

    def hide(self, by, reason):
        self._moderate(by, reason, hidden_at=timezone.now())

    def unhide(self, by):
        self._moderate(by, "", hidden_at=None)

    def delete_by_moderator(self, by, reason):
        """Removes the text and attachments; who, when and why are kept."""
        with transaction.atomic():
            self._moderate(by, reason, deleted_at=timezone.now(), body="")
            for attachment in self.attachments.all():
                attachment.delete_with_file()

    def _moderate(self, by, reason, **fields):
        if not self.thread.challenge.is_organizer(by):
            raise ValidationError("Only organizers moderate the forum.")
        if fields.get("hidden_at") is not None or "deleted_at" in fields:
            if not reason.strip():
                raise ValidationError("Give a reason: it is kept with the post.")
        for name, value in {"moderated_by": by, "moderation_reason": reason.strip(), **fields}.items():
            setattr(self, name, value)
        self.save()
        self.reports.filter(resolved_at__isnull=True).update(resolved_at=timezone.now(), resolved_by=by)
        if self.hidden_at or self.deleted_at:
            # The reply notifications quoted it: they do no more, on the site and in mail not yet sent.
            Notification.objects.filter(kind=Kind.FORUM_REPLY, url=self.get_absolute_url()).update(
                body=f"{self.author.username} wrote a reply that the organizers have since hidden or removed.")


def _attachment_path(attachment, filename):
    return f"forum/{attachment.uuid}.png"


class Attachment(models.Model):
    """An image in a post: its type checked by decoding it (not by its name), re-encoded as PNG
    with Pillow (which drops anything an image file can carry besides pixels: scripts in an SVG
    are refused, metadata is gone), stored privately and served only to who can read the post."""

    ACCEPTED_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
    MAX_PER_POST = 4

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(storage=private_storage, upload_to=_attachment_path, max_length=200)
    alt_text = models.CharField(max_length=300, help_text="What the image shows, for readers who cannot see it.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    @classmethod
    def attach_all(cls, post, user, images):
        """images: (uploaded file, alt text) pairs; all are checked before any is stored."""
        if len(images) > cls.MAX_PER_POST:
            raise ValidationError(f"At most {cls.MAX_PER_POST} images per post.")
        if any(not alt.strip() for _, alt in images):  # before any file is stored
            raise ValidationError("Describe each image (what it shows) for readers who cannot see it.")
        encoded = [(cls.reencode(upload), alt) for upload, alt in images]
        for (png, width, height), alt in encoded:
            attachment = cls(post=post, alt_text=alt.strip()[:300], width=width, height=height)
            attachment.file.save("image.png", png, save=False)
            try:
                attachment.save()
            except BaseException:
                attachment.file.delete(save=False)
                raise

    @classmethod
    def reencode(cls, upload):
        """(PNG content, width, height), or ValidationError naming the file and the problem."""
        from django.core.files.base import ContentFile

        name = getattr(upload, "name", "image")
        if upload.size > settings.MICA_FORUM_IMAGE_BYTES:
            raise ValidationError(f"{name}: larger than {settings.MICA_FORUM_IMAGE_BYTES // (1024 * 1024)} MiB.")
        try:
            with Image.open(upload) as image:
                if image.format not in cls.ACCEPTED_FORMATS:
                    raise ValidationError(f"{name}: a {image.format} file; images are PNG, JPEG, GIF or WebP.")
                if image.width * image.height > settings.MICA_FORUM_IMAGE_PIXELS:
                    raise ValidationError(f"{name}: {image.width}×{image.height} pixels, more than allowed.")
                image.load()
                pixels = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
            raise ValidationError(f"{name}: not an image this forum accepts (PNG, JPEG, GIF or WebP).") from error
        buffer = io.BytesIO()
        pixels.save(buffer, format="PNG", optimize=True)
        return ContentFile(buffer.getvalue()), pixels.width, pixels.height

    def delete_with_file(self):
        file = self.file
        self.delete()
        transaction.on_commit(lambda: file.delete(save=False))


class Report(models.Model):
    """A reader flags a post; it waits in the organizers' moderation queue until moderated or dismissed."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["post", "reporter"], name="one_report_per_reader")]

    def dismiss(self, by):
        """Closes the report without moderating the post."""
        self.resolved_at, self.resolved_by = timezone.now(), by
        self.save(update_fields=["resolved_at", "resolved_by"])


class Subscription(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="subscriptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_subscriptions")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["thread", "user"], name="one_subscription_per_thread")]
