from django import forms
from django.contrib.auth import get_user_model

from mica.challenges.models import Role

from .models import AnnotationProject, Label


class ProjectForm(forms.ModelForm):
    readers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), widget=forms.CheckboxSelectMultiple,
        help_text="Annotators of this challenge who read the cases.",
    )
    adjudicators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), widget=forms.CheckboxSelectMultiple, required=False,
        help_text="Annotators who decide the cases without consensus (they read none).",
    )

    class Meta:
        model = AnnotationProject
        fields = ["title", "instructions", "readers_per_case", "reread_share"]

    def __init__(self, *args, challenge, **kwargs):
        super().__init__(*args, **kwargs)
        annotators = get_user_model().objects.filter(
            challenge_roles__challenge=challenge, challenge_roles__role=Role.ANNOTATOR).order_by("username")
        self.fields["readers"].queryset = annotators
        self.fields["adjudicators"].queryset = annotators

    def clean(self):
        cleaned = super().clean()
        both = set(cleaned.get("readers") or []) & set(cleaned.get("adjudicators") or [])
        if both:
            raise forms.ValidationError("An annotator is either a reader or an adjudicator of a project, not both.")
        return cleaned


class LabelForm(forms.ModelForm):
    options_text = forms.CharField(required=False, label="Choices", help_text="Comma-separated, for choice kinds.")

    class Meta:
        model = Label
        fields = ["key", "title", "kind", "minimum", "maximum", "definition"]

    def clean(self):
        cleaned = super().clean()
        self.instance.options = [option.strip() for option in cleaned.get("options_text", "").split(",")
                                 if option.strip()]
        return cleaned
