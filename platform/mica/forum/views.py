"""Forum pages: check access (forum/access.py), validate, one model call, respond."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import redirect, render
from rest_framework.generics import get_object_or_404
from django.views.decorators.http import require_POST

from . import access
from .forms import ModerationForm, PostForm, ReportForm, ThreadForm
from .models import Post, Report, Thread

THREADS_PER_PAGE = 25
POSTS_PER_PAGE = 20


def _post_id(text):
    """A post id from the query string; None for anything else (too long for the database too)."""
    return int(text) if text and text.isdigit() and len(text) < 16 else None


def thread_list(request, slug):
    challenge = access.forum_challenge(request.user, slug)
    query = request.GET.get("q", "").strip()[:200]
    context = {"challenge": challenge, "query": query,
               "may_post": access.may_post(request.user, challenge),
               "is_organizer": challenge.is_organizer(request.user)}
    if query:
        posts = Post.found_in(challenge, request.user, query)
        context["page"] = Paginator(posts, THREADS_PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "forum/search.html", context)
    threads = Thread.objects.of(challenge)
    context["page"] = Paginator(threads, THREADS_PER_PAGE).get_page(request.GET.get("page"))
    if context["is_organizer"]:
        context["open_reports"] = Report.objects.filter(post__thread__challenge=challenge,
                                                        resolved_at__isnull=True).count()
    return render(request, "forum/thread_list.html", context)


@login_required
def new_thread(request, slug):
    challenge = access.posting_challenge(request.user, slug)
    is_organizer = challenge.is_organizer(request.user)
    team = challenge.team_of(request.user)
    form = ThreadForm(request.POST or None, request.FILES or None, is_organizer=is_organizer, team=team)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            thread = Thread.start(challenge, request.user, data["title"], data["body"],
                                  announcement=data.get("announcement", False),
                                  writeup_team=team if data.get("writeup") else None, images=form.images())
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect(thread)
    return render(request, "core/form_page.html", {
        "challenge": challenge, "form": form, "title": "New thread", "submit": "Post",
        "intro": "Be kind; no patient data. Posts are Markdown."})


def thread_detail(request, slug, pk):
    thread = access.thread_for(request.user, slug, pk)
    challenge = thread.challenge
    posts = thread.posts_shown_to(request.user)
    paginator = Paginator(posts, POSTS_PER_PAGE)
    page_number = request.GET.get("page")
    linked = _post_id(request.GET.get("post"))
    if linked:  # a link to one post opens the page that holds it
        page_number = posts.filter(pk__lt=linked).count() // POSTS_PER_PAGE + 1
    page = paginator.get_page(page_number)
    user = request.user
    may_post = access.may_post(user, challenge)
    reply_form = None
    if may_post and not thread.is_locked:
        quoted = posts.filter(pk=_post_id(request.GET.get("quote")), deleted_at__isnull=True).first()
        initial = {"body": quoted.quoted()} if quoted else {}
        reply_form = PostForm(initial=initial)
    return render(request, "forum/thread.html", {
        "challenge": challenge, "thread": thread, "page": page, "reply_form": reply_form,
        "is_organizer": challenge.is_organizer(user), "may_post": may_post,
        "subscribed": thread.is_followed_by(user),
    })


@login_required
@require_POST
def reply(request, slug, pk):
    thread = access.thread_for(request.user, slug, pk)
    access.posting_challenge(request.user, slug)
    form = PostForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            post = thread.reply(request.user, form.cleaned_data["body"], images=form.images())
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            return redirect(post.get_absolute_url())
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(thread)


@login_required
def edit_post(request, pk):
    post = access.post_for(request.user, pk)
    if post.author_id != request.user.pk:
        raise PermissionDenied("Only the author edits a post.")
    form = PostForm(request.POST or None, initial={"body": post.body})
    del form.fields["image"], form.fields["image_alt"]
    if request.method == "POST" and form.is_valid():
        try:
            post.edit(request.user, form.cleaned_data["body"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect(post.get_absolute_url())
    return render(request, "core/form_page.html", {"challenge": post.thread.challenge, "form": form,
                                                   "title": "Edit your post", "submit": "Save"})


@login_required
@require_POST
def moderate_post(request, pk):
    post = access.post_for(request.user, pk)
    access.moderated_challenge(request.user, post.thread.challenge.slug)
    form = ModerationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose hide, show again or delete.")
        return redirect(post.get_absolute_url())
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
    try:
        if action == "hide":
            post.hide(request.user, reason)
        elif action == "unhide":
            post.unhide(request.user)
        else:
            post.delete_by_moderator(request.user, reason)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, {"hide": "The post is hidden.", "unhide": "The post is shown again.",
                                   "delete": "The post is deleted; the reason is kept."}[action])
    if request.POST.get("next") == "queue":
        return redirect("forum:moderation", post.thread.challenge.slug)
    return redirect(post.get_absolute_url())


@login_required
def report_post(request, pk):
    post = access.post_for(request.user, pk)
    form = ReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        Report.objects.get_or_create(post=post, reporter=request.user,
                                     defaults={"reason": form.cleaned_data["reason"]})
        messages.success(request, "Thank you: the organizers will look at this post.")
        return redirect(post.get_absolute_url())
    return render(request, "core/form_page.html", {"challenge": post.thread.challenge, "form": form,
                                                   "title": "Report this post", "submit": "Report",
                                                   "intro": f"A post by {post.author.username} in "
                                                            f"“{post.thread.title}”."})


@login_required
def moderation_queue(request, slug):
    challenge = access.moderated_challenge(request.user, slug)
    reports = (Report.objects.filter(post__thread__challenge=challenge, resolved_at__isnull=True)
               .select_related("post__thread", "post__author", "reporter"))
    return render(request, "forum/moderation.html", {"challenge": challenge, "reports": reports})


@login_required
@require_POST
def dismiss_report(request, pk):
    report = get_object_or_404(Report.objects.select_related("post__thread__challenge"), pk=pk)
    challenge = access.moderated_challenge(request.user, report.post.thread.challenge.slug)
    report.dismiss(request.user)
    return redirect("forum:moderation", challenge.slug)


@login_required
@require_POST
def thread_setting(request, slug, pk, setting):
    """Organizers lock and pin; any reader who is logged in follows or unfollows."""
    thread = access.thread_for(request.user, slug, pk)
    on = request.POST.get("on") == "1"
    if setting == "subscribe":
        thread.set_followed(request.user, on)
    else:
        access.moderated_challenge(request.user, slug)
        {"lock": thread.set_locked, "pin": thread.set_pinned}[setting](on)
    return redirect(thread)


def attachment(request, pk):
    image = access.attachment_for(request.user, pk)
    response = FileResponse(image.file.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
