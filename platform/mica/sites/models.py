"""Evaluation at a hospital: a site scores algorithm containers on its own images and truth,
inside its firewall, and only aggregate scores (and what its policy allows) come back.

A `Site` belongs to a phase; its admin holds `SiteToken`s (hashed at rest) that a site worker
(``python -m evaluator site-worker``) uses to claim `SiteJob`s over HTTP. A site job is leased
work like any other (mica.core.models.LeasedWork), except that its worker is remote: the claim
API sets the lease, heartbeats renew it, the sweep expires it, and another worker of the site
takes the job over. Every accepted result is kept as a `SiteAuditEntry`, exactly as received.
"""

import hashlib
import json
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Case, Count, F, Max, Q, Value, When
from django.urls import reverse
from django.utils import timezone

from mica.core.models import LeasedWork, StatusEvent, leased_work_moves

TOKEN_PREFIX = "mica-site-"


def hash_token(raw):
    """Tokens are 256 random bits: one sha256 is enough to keep them unusable if the table leaks."""
    return hashlib.sha256(raw.encode()).hexdigest()


class Site(models.Model):
    """A hospital's own test set for a phase: its truth, images and case ids stay at the hospital."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=100)
    metrics = models.JSONField(help_text="The metrics the site reports (of the phase's task); the first ranks.")
    options = models.JSONField(default=dict, blank=True, help_text="The evaluator's options at this site.")
    share_per_case = models.BooleanField(
        default=False, help_text="Per-case values may leave the site (anonymous, in the site's own order).")
    admin = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="administered_sites")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["phase", "name"], name="one_site_name_per_phase")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("sites:site", args=[self.pk])

    @property
    def task(self):
        return self.phase.challenge.task_type

    @property
    def primary_metric(self):
        return self.metrics[0]

    def clean(self):
        import evaluator

        if not self.metrics:
            raise ValidationError({"metrics": "Name at least one metric."})
        unknown = [name for name in self.metrics if evaluator.METRICS.get(name) is None
                   or evaluator.METRICS[name].task != self.task]
        if unknown:
            raise ValidationError({"metrics": f"Not metrics of the {self.task} task: {', '.join(unknown)}."})

    def can_be_administered_by(self, user):
        """The site's admin and the challenge's organizers (staff among them)."""
        return user.is_authenticated and (user.pk == self.admin_id or self.phase.challenge.is_organizer(user))

    def issue_token(self, user):
        """A new token: the raw value is returned once and never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = SiteToken.objects.create(site=self, key_hash=hash_token(raw), prefix=raw[:len(TOKEN_PREFIX) + 6],
                                         created_by=user)
        return token, raw

    def queue_evaluations(self, user):
        """One job per algorithm of the challenge not scored or queued here yet; the new jobs."""
        from mica.algorithms.models import Algorithm

        done = self.jobs.filter(kind=SiteJob.Kind.EVALUATE).exclude(status=SiteJob.Status.FAILED)
        algorithms = Algorithm.objects.filter(challenge=self.phase.challenge).exclude(
            pk__in=done.values("algorithm"))
        with transaction.atomic():
            return [SiteJob.queue(site=self, algorithm=algorithm, user=user) for algorithm in algorithms]

    @classmethod
    def with_job_counts(cls, sites):
        """The sites with n_finished, n_waiting (queued or running) and n_failed jobs, and
        last_seen (when a worker's token was last used), counted in the same query."""
        Status = SiteJob.Status

        def jobs(*statuses):
            return Count("jobs", filter=Q(jobs__status__in=statuses), distinct=True)

        # An aggregating query leaves Meta.ordering out: the sites' order is said again.
        return sites.annotate(n_finished=jobs(Status.SUCCEEDED), n_waiting=jobs(Status.QUEUED, Status.RUNNING),
                              n_failed=jobs(Status.FAILED), last_seen=Max("tokens__last_used_at")
                              ).order_by(*cls._meta.ordering)

    def latest_results(self):
        """{algorithm id: the newest succeeded evaluation job}."""
        jobs = self.jobs.filter(kind=SiteJob.Kind.EVALUATE, status=SiteJob.Status.SUCCEEDED).select_related(
            "algorithm__team").order_by("completed_at")
        return {job.algorithm_id: job for job in jobs}


class SiteToken(models.Model):
    """What a site worker authenticates with: scoped to one site, hashed at rest, revocable."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=20, help_text="The token's first characters, to tell tokens apart.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The rate limit's count: requests since the start of the current window (see admit()).
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    @classmethod
    def authenticate(cls, raw):
        """The live token with this value, or None."""
        if not raw or not raw.startswith(TOKEN_PREFIX):
            return None
        return cls.objects.select_related("site__phase__challenge").filter(
            key_hash=hash_token(raw), revoked_at=None).first()

    def admit(self):
        """Counts one request against the token's rate limit (MICA_SITE_API_REQUESTS per
        MICA_SITE_API_WINDOW_SECONDS): None when it may go on, else the seconds to wait.

        One conditional UPDATE counts and checks at once: the database serializes it on the row,
        so web processes running side by side never let more through than the limit."""
        now = timezone.now()
        window = settings.MICA_SITE_API_WINDOW_SECONDS
        started = datetime.fromtimestamp(now.timestamp() // window * window, tz=UTC)
        admitted = type(self).objects.filter(pk=self.pk).filter(
            ~Q(window_started_at=started) | Q(window_requests__lt=settings.MICA_SITE_API_REQUESTS),
        ).update(last_used_at=now, window_started_at=started, window_requests=Case(
            When(window_started_at=started, then=F("window_requests") + 1), default=Value(1)))
        if admitted:
            return None
        return max(1, math.ceil((started + timedelta(seconds=window) - now).total_seconds()))

    def revoke(self):
        type(self).objects.filter(pk=self.pk, revoked_at=None).update(revoked_at=timezone.now())
        self.refresh_from_db()


class SiteJob(LeasedWork):
    """An evaluation of one algorithm at a site, or a comparison of two there (p-values only)."""

    class Kind(models.TextChoices):
        EVALUATE = "evaluate", "Evaluation"
        COMPARE = "compare", "Comparison"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.RUNNING, Status.FAILED, Status.SUCCEEDED)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.RUNNING, Status.FAILED

    @classmethod
    def time_limit_seconds(cls):
        # A hospital runs the whole test set on its own hardware, often a slower one than Mica's.
        return settings.MICA_SITE_JOB_TIME_LIMIT

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVALUATE)
    algorithm = models.ForeignKey("algorithms.Algorithm", on_delete=models.CASCADE, related_name="site_jobs")
    # A comparison: `algorithm` against this one, on `metric`.
    other_algorithm = models.ForeignKey("algorithms.Algorithm", on_delete=models.CASCADE, null=True, blank=True,
                                        related_name="+")
    metric = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The lease whose result was stored: a second post under it is a replay (stored once).
    result_lease = models.CharField(max_length=200, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.algorithm.name} at {self.site}"

    @classmethod
    def queue(cls, *, site, algorithm, user, kind=Kind.EVALUATE, other_algorithm=None, metric=""):
        if algorithm.challenge_id != site.phase.challenge_id:
            raise ValidationError("The algorithm belongs to another challenge than the site's phase.")
        job = cls.objects.create(site=site, algorithm=algorithm, kind=kind, other_algorithm=other_algorithm,
                                 metric=metric, requested_by=user)
        job.record_move("", cls.Status.QUEUED, "Queued for the site's workers.")
        return job

    @classmethod
    def queue_comparison(cls, *, site, algorithm, other_algorithm, metric, user):
        """The site's workers compare two algorithms they have scored, with their per-case values kept at home."""
        if metric not in site.metrics:
            raise ValidationError(f"The site does not report {metric!r}.")
        scored = site.latest_results()
        missing = [a.name for a in (algorithm, other_algorithm) if a.pk not in scored]
        if missing:
            raise ValidationError(f"Not scored at {site.name} yet: {', '.join(missing)}.")
        if algorithm.pk == other_algorithm.pk:
            raise ValidationError("Choose two different algorithms.")
        return cls.queue(site=site, algorithm=algorithm, other_algorithm=other_algorithm, metric=metric,
                         user=user, kind=cls.Kind.COMPARE)

    def dispatch(self):
        """Site workers poll the claim API: no message to send, the row waiting is the work."""
        type(self).objects.filter(pk=self.pk).update(dispatched_at=timezone.now(), redispatch_at=None)
        return True

    def too_many_attempts_reason(self):
        return (f"Its lease ran out {self.attempts} times (the site's workers stopped or lost Mica); "
                "queue it again from the site's page.")

    def record_move(self, from_status, to_status, reason):
        SiteJobEvent.objects.create(job=self, from_status=from_status, to_status=to_status, reason=reason)

    @classmethod
    def claim_next(cls, site):
        """The oldest claimable job of the site, claimed (its lease id is `claimed_by`), or None."""
        now = timezone.now()
        for pk in cls.objects.filter(cls.claimable(now), site=site).order_by("created_at").values_list("pk", flat=True):
            job = cls.objects.get(pk=pk)
            if job.claim("Claimed by a site worker."):
                return job
        return None

    def renew(self, lease):
        """Extends the lease; False when the lease is not the live one."""
        return bool(type(self).objects.filter(pk=self.pk, status=self.RUNNING, claimed_by=lease).update(
            lease_expires_at=timezone.now() + timedelta(seconds=settings.MICA_LEASE_SECONDS)))

    @property
    def lease_seconds(self):
        return settings.MICA_LEASE_SECONDS

    def payload(self):
        """What the worker is told: never anything it does not need."""
        image = self.algorithm.image
        body = {"job": str(self.uuid), "lease": self.claimed_by, "lease_seconds": self.lease_seconds,
                "kind": self.kind, "task": self.site.task, "metrics": self.site.metrics,
                "options": {**self.site.phase.metric_options, **self.site.options},
                "share_per_case": self.site.share_per_case,
                "algorithm": {"id": self.algorithm_id, "digest": image.digest}}
        if self.kind == self.Kind.EVALUATE:
            from mica.algorithms.models import MIB, UNPACKED_PER_ARCHIVE_BYTE

            phase = self.site.phase
            body["image"] = {"digest": image.digest, "sha256": archive_sha256(image), "size_bytes": image.size_bytes,
                             "url": reverse("sites:api_image", args=[self.uuid])}
            body["limits"] = {"wall_seconds": phase.container_total_seconds,
                              "memory_bytes": phase.container_memory_mb * MIB, "cpus": phase.container_cpus,
                              "max_unpacked_bytes": image.size_bytes * UNPACKED_PER_ARCHIVE_BYTE}
        else:
            body["other_algorithm"] = {"id": self.other_algorithm_id, "digest": self.other_algorithm.image.digest}
            body["metric"] = self.metric
        return body

    def accept_result(self, *, lease, body, token):
        """Stores a worker's result once. Returns (http status, message)."""
        problem = result_problem(self, body)
        with transaction.atomic():
            job = type(self).objects.select_for_update().get(pk=self.pk)
            if job.result_lease and job.result_lease == lease:
                return 200, "This result was stored already (a replay); nothing changed."
            # A lease that ran out still holds the job until another claim takes it: a slow link
            # at the hospital does not waste a run. Only a takeover or the job's end refuses it.
            if job.status in (self.Status.SUCCEEDED, self.Status.FAILED):
                return 409, (f"This lease is not the job's live lease: the job ended ({job.get_status_display()}); "
                             "the result was not stored.")
            if job.status != self.RUNNING or job.claimed_by != lease:
                return 409, ("This lease is not the job's live lease: another worker took the job over after it "
                             "ran out; the result was not stored (the new worker's result counts).")
            if problem:
                return 400, problem
            succeeded = body["status"] == "succeeded"
            stored = {key: body[key] for key in RESULT_KEYS if key in body}
            reason = "Scored at the site." if succeeded else f"The site reported: {body.get('reason', '')}"[:500]
            moved = job.finish(self.Status.SUCCEEDED if succeeded else self.Status.FAILED, reason,
                               result=stored, result_lease=lease, completed_at=timezone.now())
            if not moved:
                return 409, "The lease ended while the result was stored; the result was not stored."
            SiteAuditEntry.objects.create(site=self.site, job=job, token_prefix=token.prefix, lease=lease, body=body)
        self.refresh_from_db()
        return 201, "Stored."


RESULT_KEYS = ("status", "reason", "n_cases", "missing_cases", "metrics", "intervals", "per_case", "p_values",
               "method")


def result_problem(job, body):
    """What is wrong with a posted result (naming the key), or None."""
    if not isinstance(body, dict):
        return "The body must be a JSON object."
    unknown = sorted(set(body) - set(RESULT_KEYS) - {"lease"})
    if unknown:
        return f"Unknown keys: {', '.join(unknown)}."
    if body.get("status") not in ("succeeded", "failed"):
        return "'status' must be 'succeeded' or 'failed'."
    if body["status"] == "failed":
        if not isinstance(body.get("reason", ""), str) or len(body.get("reason", "")) > 500:
            return "'reason' must be text of at most 500 characters."
        return None
    if job.kind == SiteJob.Kind.COMPARE:
        p_values = body.get("p_values")
        if not isinstance(p_values, dict) or not all(_number(v) and 0 <= v <= 1 for v in p_values.values()):
            return "'p_values' must be an object of numbers in [0, 1]."
        return None
    metrics = body.get("metrics")
    if not isinstance(metrics, dict) or set(metrics) != set(job.site.metrics):
        return f"'metrics' must name exactly the site's metrics: {', '.join(job.site.metrics)}."
    if not all(v is None or _number(v) for v in metrics.values()):
        return "'metrics' values must be numbers or null."
    intervals = body.get("intervals", {})
    if not isinstance(intervals, dict) or not all(
            name in metrics and isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair)
            for name, pair in intervals.items()):
        return "'intervals' must map the site's metrics to [low, high]."
    if not isinstance(body.get("n_cases"), int) or body["n_cases"] < 1:
        return "'n_cases' must be a positive integer."
    per_case = body.get("per_case")
    if per_case is not None:
        if not job.site.share_per_case:
            return "The site's policy keeps per-case values at the site: 'per_case' is refused."
        if not isinstance(per_case, dict) or not all(
                name in metrics and isinstance(values, list) and len(values) == body["n_cases"]
                and all(v is None or _number(v) for v in values) for name, values in per_case.items()):
            return "'per_case' must map the site's metrics to lists of n_cases numbers."
    return None


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def archive_sha256(image):
    with image.file.open("rb") as stream:
        digest = hashlib.sha256()
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SiteJobEvent(StatusEvent):
    job = models.ForeignKey(SiteJob, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=SiteJob.Status.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=SiteJob.Status.choices)


class SiteAuditEntry(models.Model):
    """One accepted post from a site, its body exactly as received: what left the hospital."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="audit_entries")
    job = models.ForeignKey(SiteJob, on_delete=models.CASCADE, related_name="audit_entries")
    token_prefix = models.CharField(max_length=20)
    lease = models.CharField(max_length=200)
    body = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    @property
    def body_json(self):
        return json.dumps(self.body, sort_keys=True)

    @property
    def summary(self) -> str:
        """What kinds of values left, in words: the line the audit page shows before the body."""
        body = self.body
        parts = [body.get("status", "")]
        for key, words in (("metrics", "metrics"), ("intervals", "intervals"), ("p_values", "p-values")):
            if body.get(key):
                parts.append(f"{words}: {', '.join(sorted(body[key]))}")
        if body.get("per_case"):
            parts.append(f"per-case values of {', '.join(sorted(body['per_case']))} ({body.get('n_cases')} each)")
        return " · ".join(part for part in parts if part)
