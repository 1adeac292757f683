from django import forms

from .models import Challenge, Phase, TestSet


class ChallengeForm(forms.ModelForm):
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
    truth_file = forms.FileField(
        help_text="The ground truth: a CSV, or for segmentation a .zip of <case_id>.png or .nii.gz masks. "
        "Participants never see it."
    )


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
