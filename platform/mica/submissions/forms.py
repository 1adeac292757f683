from django import forms


class SubmissionForm(forms.Form):
    predictions = forms.FileField(help_text="A CSV with the header shown above, or a .zip of masks.")
    comment = forms.CharField(max_length=500, required=False)


class BaselineForm(forms.Form):
    predictions = forms.FileField(help_text="The baseline's predictions, in the phase's format.")
    comment = forms.CharField(max_length=500, label="Name", help_text="Shown on the leaderboard, e.g. 'ResNet-50 baseline'.")
