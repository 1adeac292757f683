import csv
import io
import json

from django import forms
from django.core.exceptions import ValidationError

import evaluator

from .models import Challenge, Phase, TestSet

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ChallengeForm(forms.ModelForm):
    class Meta:
        model = Challenge
        fields = ["title", "slug", "task_type", "description", "terms", "registration", "allowed_email_domains",
                  "team_size_limit", "team_merge_deadline"]
        widgets = {"team_merge_deadline": DATETIME_WIDGET}
        help_texts = {"team_merge_deadline": "UTC. Empty: teams cannot merge."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.test_sets.exists():
            # Test sets were checked as this task's files; another task would not read them.
            self.fields["task_type"].disabled = True
            self.fields["task_type"].help_text = "Fixed once a test set exists."

    def clean(self):
        data = super().clean()
        if data.get("registration") == Challenge.Registration.DOMAINS and not data.get("allowed_email_domains"):
            self.add_error("allowed_email_domains", "List the e-mail domains that may register.")
        return data


class RegistrationForm(forms.Form):
    accept_terms = forms.BooleanField(label="I accept the terms of this challenge", required=True)


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100)


class TeamJoinForm(forms.Form):
    join_code = forms.CharField(max_length=20, help_text="Ask a member of the team for its code.")


class TeamRenameForm(forms.Form):
    name = forms.CharField(max_length=100)


class TeamMergeForm(forms.Form):
    join_code = forms.CharField(max_length=20, help_text="The code of the team yours merges into.")


class OrganizerRequestForm(forms.Form):
    motivation = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=2000,
                                 help_text="Who you are, and the challenge you plan.")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class OrganizerForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="The user to add as a co-organizer.")


def _read_patients(uploaded):
    """case_id,patient rows of the optional patients file; ValidationError names the row."""
    try:
        text = uploaded.read().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(f"{uploaded.name}: not a UTF-8 text file.") from error
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [cell.strip() for cell in rows[0]] != ["case_id", "patient"]:
        raise ValidationError(f"{uploaded.name}, row 1: the header must be case_id,patient.")
    patients = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValidationError(f"{uploaded.name}, row {number}: expected a case id and a patient.")
        if row[0] in patients:
            raise ValidationError(f"{uploaded.name}, row {number}: case {row[0]!r} is listed twice.")
        patients[row[0]] = row[1]
    return patients


class TestSetForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Hidden test set")
    truth_file = forms.FileField(
        help_text="The ground truth: a CSV, or for segmentation a .zip of <case_id>.png or .nii.gz masks. "
        "Participants never see it."
    )
    private_fraction = forms.FloatField(
        min_value=0, max_value=0.95, initial=0.5,
        help_text="The share of cases on the private leaderboard (0: no private part). "
        "The split is random, stratified by label, seeded and recorded.",
    )
    seed = forms.IntegerField(min_value=0, required=False, help_text="Empty: a random seed, recorded.")
    patients_file = forms.FileField(
        required=False,
        help_text="Optional CSV case_id,patient: no patient then has cases in both parts.",
    )

    def clean_patients_file(self):
        uploaded = self.cleaned_data.get("patients_file")
        return _read_patients(uploaded) if uploaded else None


class TruthVersionForm(forms.Form):
    truth_file = forms.FileField(help_text="The corrected truth, with the same cases.")
    note = forms.CharField(max_length=500, help_text="What changed (organizers see it; the leaderboard names the version).")


CONTAINER_LIMITS = ["container_max_mb", "container_case_seconds", "container_total_seconds", "container_memory_mb",
                    "container_cpus"]
RANKING_SETTINGS = ["ranking_method", "ranking_ties", "ranking_alpha"]


class PhaseForm(forms.ModelForm):
    secondary_metrics = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Phase
        fields = ["name", "description", "test_set", "starts_at", "ends_at", "primary_metric", "secondary_metrics",
                  "metric_options", "score_precision", "daily_limit", "total_limit", "concurrent_limit", "selection",
                  "max_selected", "visibility", "blind", "parent", "accepts_containers", "container_max_mb",
                  "container_case_seconds", "container_total_seconds", "container_memory_mb", "container_cpus",
                  "container_gpu", "container_logs_visible", "ranking_method", "ranking_ties",
                  "ranking_alpha"]
        widgets = {"starts_at": DATETIME_WIDGET, "ends_at": DATETIME_WIDGET,
                   "description": forms.Textarea(attrs={"rows": 3}),
                   "metric_options": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"starts_at": "UTC.", "ends_at": "UTC. A submission counts when its upload completes before then."}

    def __init__(self, *args, challenge, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.challenge = challenge
        task = challenge.task_type
        choices = [(name, f"{name}: {metric.description}") for name, metric in evaluator.METRICS.items()
                   if metric.task == task]
        choices += [(name, f"{name}: from the organizers' metric container") for name in self.instance.custom_metrics()]
        self.fields["primary_metric"] = forms.ChoiceField(choices=choices)
        self.fields["secondary_metrics"].choices = choices
        options = evaluator.task_options(task)
        self.fields["metric_options"].help_text = "A JSON object of the evaluator's options: " + (
            "; ".join(f"{name}: {spec['help']} (default {json.dumps(spec['default'])})" for name, spec in options.items())
            or "this task has none."
        )
        self.fields["metric_options"].required = False
        test_sets = TestSet.objects.filter(challenge=challenge)
        self.fields["test_set"].queryset = test_sets
        if not self.instance.pk and len(test_sets) == 1:
            self.initial.setdefault("test_set", test_sets[0].pk)
        self.fields["parent"].queryset = challenge.phases.exclude(pk=self.instance.pk)
        for name in (*CONTAINER_LIMITS, *RANKING_SETTINGS):  # left out or blank: the phase keeps its value
            self.fields[name].required = False

    def clean_metric_options(self):
        return self.cleaned_data.get("metric_options") or {}

    def clean(self):
        # Container limits and ranking settings are optional in a posted form (a script that
        # predates them): one left out keeps the phase's value, the model's default for a new phase.
        data = super().clean()
        for name in (*CONTAINER_LIMITS, *RANKING_SETTINGS):
            if data.get(name) in (None, ""):
                data[name] = getattr(self.instance, name)
        return data
