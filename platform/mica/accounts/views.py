from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.http import urlsafe_base64_decode

from mica.challenges.models import ChallengeRole
from mica.submissions.models import Submission

from .forms import ResendVerificationForm, SignUpForm
from .verification import resend_verification, send_verification, verification_tokens

MY_SUBMISSIONS_SHOWN = 200


def signup(request):
    """Creates the account inactive and sends the verification link (through the outbox)."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save(commit=False)
            user.is_active = False
            user.save()
            send_verification(user)
        return render(request, "accounts/verify_sent.html", {"email": user.email})
    return render(request, "accounts/signup.html", {"form": form})


def resend(request):
    form = ResendVerificationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        resend_verification(form.cleaned_data["email"])
        return render(request, "accounts/verify_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "core/form_page.html", {
        "form": form, "title": "Send the confirmation link again", "submit": "Send",
        "intro": "For an account whose address is not confirmed yet."})


def verify(request, uidb64, token):
    try:
        user = get_user_model().objects.get(pk=int(urlsafe_base64_decode(uidb64).decode()))
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist):
        user = None
    if user is None or not verification_tokens.check_token(user, token):
        return render(request, "accounts/verify_failed.html", status=400)
    user.is_active = True
    user.save(update_fields=["is_active"])
    # The link proves the address; no password to authenticate() (and count against axes).
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, "Your e-mail address is confirmed. Welcome to Mica.")
    return redirect("core:home")


@login_required
def my_challenges(request):
    """Every challenge the user holds a role in (a registration waiting for approval included)."""
    roles = (ChallengeRole.objects.filter(user=request.user).select_related("challenge")
             .order_by("-challenge__created_at", "role"))
    challenges = {}
    for role in roles:
        if role.challenge.can_be_seen_by(request.user):
            entry = challenges.setdefault(role.challenge.pk, {"challenge": role.challenge, "roles": []})
            entry["roles"].append(role)
    return render(request, "accounts/my_challenges.html", {"entries": list(challenges.values())})


@login_required
def my_submissions(request):
    """The submissions of the user's teams, as the team sees them (public part only)."""
    submissions = (Submission.objects.filter(team__memberships__user=request.user)
                   .with_team_view().order_by("-created_at")[:MY_SUBMISSIONS_SHOWN])
    return render(request, "accounts/my_submissions.html",
                  {"rows": [(submission, submission.team_view()) for submission in submissions],
                   "limit": MY_SUBMISSIONS_SHOWN})
