from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import EmailOptOut, Kind, Notification

PER_PAGE = 30


@login_required
def notification_list(request):
    rows = Notification.objects.filter(user=request.user).select_related("challenge")
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {"page": page})


@login_required
@require_POST
def mark_read(request):
    """One notification (its id in the form) or, without one, all of them."""
    pks = request.POST.getlist("notification")
    Notification.mark_read(request.user, [int(pk) for pk in pks if pk.isdigit() and len(pk) < 16] if pks else None)
    return redirect("notifications:list")


@login_required
def email_settings(request):
    if request.method == "POST":
        wanted = set(request.POST.getlist("kind"))
        # The kinds the page showed: a kind it did not offer keeps its setting.
        EmailOptOut.change_for(request.user, {row["kind"]: row["kind"] in wanted
                                              for row in EmailOptOut.preferences(request.user)})
        messages.success(request, "Your e-mail settings are saved.")
        return redirect("notifications:settings")
    return render(request, "notifications/settings.html", {"kinds": EmailOptOut.preferences(request.user)})


@csrf_exempt  # the signed token is the authority; mail clients POST it without a session (RFC 8058)
def unsubscribe(request, token):
    """Works without logging in. GET shows a button (link scanners follow GETs); POST turns the
    e-mail of that kind off. A forged or altered token is refused."""
    try:
        user_pk, kind = EmailOptOut.from_token(token)
        user = get_user_model().objects.get(pk=user_pk)
    except (signing.BadSignature, ValueError, KeyError, TypeError, get_user_model().DoesNotExist):
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    done = request.method == "POST"
    if done:
        EmailOptOut.objects.get_or_create(user=user, kind=kind)
    return render(request, "notifications/unsubscribe.html", {"kind": Kind(kind), "done": done})
