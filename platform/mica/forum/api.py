"""The forum over the API: the same access functions (forum/access.py) and model calls as the
pages, so a reader sees, and may post, exactly what the pages show and allow."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from mica.core.markdown import render_markdown
from mica.notifications.api import JSONBooleanField

from . import access
from .models import Attachment, Post, Thread


def refused(error):
    """A model's refusal (locked thread, spam limit, announcement by a participant) as a 400."""
    raise ValidationError({"non_field_errors": error.messages}) from error


class ThreadSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)
    is_locked = serializers.BooleanField(read_only=True)
    writeup_team = serializers.CharField(source="writeup_team.name", read_only=True, allow_null=True,
                                         help_text="The team whose solution write-up this thread is.")
    n_posts = serializers.IntegerField(read_only=True, help_text="Its posts that everyone sees.")
    web_url = serializers.SerializerMethodField()

    class Meta:
        model = Thread
        fields = ["id", "title", "author", "created_at", "last_post_at", "pinned", "is_announcement", "is_locked",
                  "writeup_team", "n_posts", "web_url"]

    def get_web_url(self, thread) -> str:
        return self.context["request"].build_absolute_uri(thread.get_absolute_url())


class ThreadDetailSerializer(ThreadSerializer):
    followed = serializers.SerializerMethodField(help_text="Whether you follow it (replies notify you).")

    class Meta(ThreadSerializer.Meta):
        fields = [*ThreadSerializer.Meta.fields, "followed"]

    def get_followed(self, thread) -> bool:
        return thread.is_followed_by(self.context["request"].user)


class ModerationSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["hidden", "deleted"])
    by = serializers.CharField(allow_null=True, help_text="The organizer who moderated the post.")
    at = serializers.DateTimeField()
    reason = serializers.CharField()


class AttachmentSerializer(serializers.Serializer):
    url = serializers.CharField()
    alt_text = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class PostSerializer(serializers.ModelSerializer):
    """A post as the thread's page shows it: a deleted post keeps only who deleted it, when and
    why; a hidden one (shown to its author and the organizers) says so."""

    author = serializers.CharField(source="author.username", read_only=True)
    by_organizer = serializers.BooleanField(read_only=True, help_text="Posted by an organizer of the challenge.")
    body = serializers.SerializerMethodField(help_text="The Markdown as written; empty once deleted.")
    body_html = serializers.SerializerMethodField(help_text="The Markdown rendered and sanitized, as the page "
                                                            "shows it; empty once deleted.")
    moderation = serializers.SerializerMethodField()
    attachments = serializers.SerializerMethodField()
    web_url = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = ["id", "author", "by_organizer", "created_at", "edited_at", "body", "body_html", "moderation",
                  "attachments", "web_url"]

    def get_body(self, post) -> str:
        return "" if post.is_deleted else post.body

    def get_body_html(self, post) -> str:
        return "" if post.is_deleted else render_markdown(post.body)

    @extend_schema_field(ModerationSerializer(allow_null=True))
    def get_moderation(self, post):
        if post.is_deleted:
            action, at = "deleted", post.deleted_at
        elif post.hidden_at is not None:
            action, at = "hidden", post.hidden_at
        else:
            return None
        by = post.moderated_by.username if post.moderated_by else None
        return {"action": action, "by": by, "at": at, "reason": post.moderation_reason}

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, post):
        if post.is_deleted:
            return []
        request = self.context["request"]
        return [{"url": request.build_absolute_uri(reverse("forum:attachment", args=[image.uuid])),
                 "alt_text": image.alt_text, "width": image.width, "height": image.height}
                for image in post.attachments.all()]

    def get_web_url(self, post) -> str:
        return self.context["request"].build_absolute_uri(post.get_absolute_url())


class SearchResultSerializer(serializers.ModelSerializer):
    thread = serializers.IntegerField(source="thread_id", read_only=True)
    thread_title = serializers.CharField(source="thread.title", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True)
    summary = serializers.CharField(read_only=True, help_text="The post as plain text, shortened.")
    web_url = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = ["id", "thread", "thread_title", "author", "by_organizer", "created_at", "summary", "web_url"]

    def get_web_url(self, post) -> str:
        return self.context["request"].build_absolute_uri(post.get_absolute_url())


class FormBooleanField(JSONBooleanField):
    """true or false; in multipart form data (a post with images), whose fields are text, the
    text "true" or "false"."""

    def to_internal_value(self, data):
        if data in ("true", "false"):
            return data == "true"
        return super().to_internal_value(data)


class NewPostSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=Post.MAX_BODY_CHARS, help_text="Markdown.")
    images = serializers.ListField(
        child=serializers.FileField(), required=False, max_length=Attachment.MAX_PER_POST,
        help_text=f"Up to {Attachment.MAX_PER_POST} images (PNG, JPEG, GIF or WebP), sent as multipart/form-data: "
                  "each is decoded and stored re-encoded as PNG, without its metadata.")
    alt_texts = serializers.ListField(
        child=serializers.CharField(max_length=Attachment._meta.get_field("alt_text").max_length), required=False,
        help_text="What each image shows, for readers who cannot see it: one per image, in the same order.")

    def validate(self, data):
        images, alt_texts = data.get("images", []), data.get("alt_texts", [])
        if len(images) != len(alt_texts):
            raise ValidationError({"alt_texts": f"{len(images)} images and {len(alt_texts)} descriptions: "
                                                "describe each image, in the images' order."})
        return dict(data, images=list(zip(images, alt_texts)))


class NewThreadSerializer(NewPostSerializer):
    title = serializers.CharField(max_length=Thread._meta.get_field("title").max_length)
    announcement = FormBooleanField(default=False, help_text="Organizers: pinned, and every participant is told.")
    writeup = FormBooleanField(default=False, help_text="Your team's solution write-up.")


SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The challenge's slug.")
THREAD = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The thread's id.")


@extend_schema(parameters=[SLUG])
class ThreadListView(generics.ListCreateAPIView):
    """A challenge's threads, pinned first, then by last post; registered readers start one."""

    serializer_class = ThreadSerializer
    parser_classes = [JSONParser, MultiPartParser]  # multipart: with images

    def get_queryset(self):
        return Thread.objects.of(access.forum_challenge(self.request.user, self.kwargs["slug"]))

    @extend_schema(request=NewThreadSerializer, responses={201: ThreadDetailSerializer})
    def post(self, request, slug):
        challenge = access.posting_challenge(request.user, slug)
        body = NewThreadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        team = challenge.team_of(request.user) if data["writeup"] else None
        if data["writeup"] and team is None:
            raise ValidationError({"writeup": "You are in no team of this challenge: a write-up is a team's."})
        try:
            thread = Thread.start(challenge, request.user, data["title"], data["body"],
                                  announcement=data["announcement"], writeup_team=team, images=data["images"])
        except DjangoValidationError as error:
            refused(error)
        thread = access.thread_for(request.user, slug, thread.pk)  # with its counts, as it is read
        return Response(ThreadDetailSerializer(thread, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(parameters=[SLUG, THREAD])
class ThreadDetailView(generics.RetrieveAPIView):
    serializer_class = ThreadDetailSerializer

    def get_object(self):
        return access.thread_for(self.request.user, self.kwargs["slug"], self.kwargs["pk"])


@extend_schema(parameters=[SLUG, THREAD])
class PostListView(generics.ListCreateAPIView):
    """A thread's posts, oldest first, as its page shows them; registered readers reply unless it is locked."""

    serializer_class = PostSerializer
    parser_classes = [JSONParser, MultiPartParser]  # multipart: with images

    def get_queryset(self):
        return access.thread_for(self.request.user, self.kwargs["slug"], self.kwargs["pk"]).posts_shown_to(
            self.request.user)

    @extend_schema(request=NewPostSerializer, responses={201: PostSerializer})
    def post(self, request, slug, pk):
        thread = access.thread_for(request.user, slug, pk)
        access.posting_challenge(request.user, slug)
        body = NewPostSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            post = thread.reply(request.user, body.validated_data["body"], images=body.validated_data["images"])
        except DjangoValidationError as error:
            refused(error)
        return Response(self.get_serializer(post).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[SLUG])
class SearchView(generics.ListAPIView):
    """Posts matching `q`, best first (PostgreSQL full-text search, web-search syntax), that you may read."""

    serializer_class = SearchResultSerializer

    @extend_schema(parameters=[OpenApiParameter("q", str, required=True, description="What to look for.")],
                   responses={200: SearchResultSerializer(many=True),
                              400: OpenApiResponse(description="No `q` given, or an empty one.")})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        challenge = access.forum_challenge(self.request.user, self.kwargs["slug"])
        text = self.request.query_params.get("q", "").strip()
        if not text:
            raise ValidationError({"q": "Say what to look for: ?q=<words>."})
        return Post.found_in(challenge, self.request.user, text[:200])


@extend_schema(parameters=[SLUG, THREAD])
class FollowView(APIView):
    """Follow a thread (PUT: its replies notify you) or stop (DELETE)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def put(self, request, slug, pk):
        access.thread_for(request.user, slug, pk).set_followed(request.user, True)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug, pk):
        access.thread_for(request.user, slug, pk).set_followed(request.user, False)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("forum/<slug:slug>/threads/", ThreadListView.as_view(), name="api-forum-threads"),
    path("forum/<slug:slug>/threads/<int:pk>/", ThreadDetailView.as_view(), name="api-forum-thread"),
    path("forum/<slug:slug>/threads/<int:pk>/posts/", PostListView.as_view(), name="api-forum-posts"),
    path("forum/<slug:slug>/threads/<int:pk>/follow/", FollowView.as_view(), name="api-forum-follow"),
    path("forum/<slug:slug>/search/", SearchView.as_view(), name="api-forum-search"),
]
