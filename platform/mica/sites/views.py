from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from mica.challenges import access as challenge_access

from .access import administered_site, administered_token, organized_site
from .forms import CompareForm, SiteForm
from .models import Site, SiteJob
from .transfer import BOOTSTRAP, NORMAL, transferability


@login_required
def phase_sites(request, phase_pk):
    """Organizers: the phase's sites and the form to add one."""
    phase = challenge_access.organized_phase(request.user, phase_pk)
    form = SiteForm(request.POST or None, phase=phase)
    if request.method == "POST" and form.is_valid():
        site = form.save(commit=False)
        site.created_by = request.user
        site.save()
        messages.success(request, f"Site {site.name} added; its admin can now issue a token for its worker.")
        return redirect(site)
    return render(request, "sites/phase_sites.html", {
        "phase": phase, "challenge": phase.challenge, "sites": Site.with_job_counts(phase.sites.select_related("admin")),
        "form": form})


@login_required
def site_detail(request, pk):
    """The site admin's and organizers' page: jobs, tokens, and what left the site."""
    site = administered_site(request.user, pk)
    is_organizer = site.phase.challenge.is_organizer(request.user)
    return render(request, "sites/site.html", {
        "site": site, "phase": site.phase, "challenge": site.phase.challenge, "is_organizer": is_organizer,
        "jobs": site.jobs.select_related("algorithm__team", "other_algorithm"),
        "tokens": site.tokens.all(), "new_token": request.session.pop(f"site-token-{site.pk}", None),
        "compare_form": CompareForm(site=site) if is_organizer else None})


@login_required
def audit(request, pk):
    site = administered_site(request.user, pk)
    return render(request, "sites/audit.html", {
        "site": site, "challenge": site.phase.challenge,
        "entries": site.audit_entries.select_related("job__algorithm")})


@login_required
@require_POST
def new_token(request, pk):
    site = administered_site(request.user, pk)
    _, raw = site.issue_token(request.user)
    # Shown once, on the next page: the session carries it across the redirect, then forgets it.
    request.session[f"site-token-{site.pk}"] = raw
    return redirect(site)


@login_required
@require_POST
def revoke_token(request, pk):
    token = administered_token(request.user, pk)
    token.revoke()
    messages.success(request, f"Token {token.prefix}… revoked; a worker using it is refused from now on.")
    return redirect(token.site)


@login_required
@require_POST
def queue(request, pk):
    site = organized_site(request.user, pk)
    jobs = site.queue_evaluations(request.user)
    messages.success(request, f"{len(jobs)} evaluation{'s' if len(jobs) != 1 else ''} queued for {site.name}.")
    return redirect(site)


@login_required
@require_POST
def compare(request, pk):
    site = organized_site(request.user, pk)
    form = CompareForm(request.POST, site=site)
    if form.is_valid():
        try:
            SiteJob.queue_comparison(site=site, user=request.user, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Comparison queued; the site's worker returns its p-value only.")
    else:
        messages.error(request, "Choose two algorithms and a metric.")
    return redirect(site)


@login_required
def phase_transferability(request, phase_pk):
    """Organizers: each algorithm's score per site, the differences between sites, the rankings."""
    phase = challenge_access.organized_phase(request.user, phase_pk)
    return render(request, "sites/transferability.html", {
        "phase": phase, "challenge": phase.challenge, **transferability(phase),
        "normal_method": NORMAL, "bootstrap_method": BOOTSTRAP})
