from django import forms


class SubmissionForm(forms.Form):
    predictions = forms.FileField(help_text="A CSV with the header shown above, or a .zip of masks.")
    comment = forms.CharField(max_length=500, required=False)
