from django import forms

from .models import Challenge, Phase, TestSet


# Segmentation submissions are folders of masks; the site takes them once uploads of zipped
# masks exist. The evaluator and its CLI score segmentation already.
SITE_TASK_TYPES = [choice for choice in Challenge.TaskType.choices if choice[0] != Challenge.TaskType.SEGMENTATION]


class ChallengeForm(forms.ModelForm):
    task_type = forms.ChoiceField(choices=SITE_TASK_TYPES)

    class Meta:
        model = Challenge
        fields = ["title", "slug", "task_type", "primary_metric", "description", "terms",
                  "leaderboard_selection", "daily_submission_limit"]


class RegistrationForm(forms.Form):
    accept_terms = forms.BooleanField(label="I accept the terms of this challenge", required=True)


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100)


class TeamJoinForm(forms.Form):
    join_code = forms.CharField(max_length=20, help_text="Ask a member of the team for its code.")


class TestSetForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Hidden test set")
    truth_file = forms.FileField(help_text="CSV of the ground truth. Participants never see it.")


class PhaseForm(forms.ModelForm):
    class Meta:
        model = Phase
        fields = ["name", "test_set", "starts_at", "ends_at"]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def __init__(self, *args, challenge, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.challenge = challenge
        self.fields["test_set"].queryset = TestSet.objects.filter(challenge=challenge)
