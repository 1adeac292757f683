"""Who sees and who acts in a challenge's forum; every forum page calls one of these.

Reading: a published challenge with open registration, anyone; one with restricted registration
(approval or e-mail domains), its participants and organizers only; a draft, its organizers.
Posting: participants and organizers (Thread.start / reply check it again, with the spam limits).
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.generics import get_object_or_404

from mica.challenges.access import challenge_for

from .models import Attachment, Post, Thread


def forum_challenge(user, slug):
    challenge = challenge_for(user, slug)  # drafts: 404 unless organizer
    if challenge.registration != challenge.Registration.OPEN and not (
        challenge.is_organizer(user) or challenge.is_participant(user)
    ):
        raise PermissionDenied("This challenge's forum is open to its participants only.")
    return challenge


def may_post(user, challenge):
    """Whether the forum offers this reader to post (the spam limits are checked on posting)."""
    return challenge.is_organizer(user) or challenge.is_participant(user)


def posting_challenge(user, slug):
    challenge = forum_challenge(user, slug)
    if not may_post(user, challenge):
        raise PermissionDenied("Register for the challenge to post in its forum.")
    return challenge


def moderated_challenge(user, slug):
    challenge = forum_challenge(user, slug)
    if not challenge.is_organizer(user):
        raise PermissionDenied("Only the organizers moderate this forum.")
    return challenge


def thread_for(user, slug, pk):
    challenge = forum_challenge(user, slug)
    return get_object_or_404(Thread.objects.of(challenge), pk=pk)


def post_for(user, pk):
    """A post the user can read (hidden posts: their author and the organizers)."""
    post = get_object_or_404(Post.objects.select_related("thread__challenge", "author"), pk=pk)
    challenge = forum_challenge(user, post.thread.challenge.slug)
    if not Post.objects.filter(pk=pk).shown_to(user, challenge).exists():
        raise Http404("No such post.")
    return post


def attachment_for(user, pk):
    attachment = get_object_or_404(Attachment.objects.select_related("post__thread__challenge"), uuid=pk)
    post = post_for(user, attachment.post_id)
    if post.is_deleted:
        raise Http404("No such image.")
    return attachment
