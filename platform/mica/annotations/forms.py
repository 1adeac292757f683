from django import forms
from django.contrib.auth import get_user_model

from mica.challenges.models import Role

from .models import AnnotationProject, Label, LabelKind


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


class SplitForm(forms.Form):
    test_fraction = forms.FloatField(min_value=0.01, max_value=0.99, initial=0.3,
                                     help_text="The share of cases (by patient) held out as the test set.")
    private_fraction = forms.FloatField(min_value=0.01, max_value=0.99, initial=0.5,
                                        help_text="The share of the test cases on the private leaderboard.")
    stratified_by = forms.ModelChoiceField(queryset=Label.objects.none(), required=False,
                                           help_text="Each consensus answer keeps its share in both parts.")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, required=False,
                              help_text="Empty: a random seed (recorded either way).")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stratified_by"].queryset = project.labels.filter(
            kind__in=[LabelKind.CHOICE, LabelKind.MULTIPLE_CHOICE, LabelKind.NUMBER])


class HandoverForm(forms.Form):
    label = forms.ModelChoiceField(queryset=Label.objects.none(), help_text="Whose consensus becomes the truth.")
    positive = forms.CharField(required=False, max_length=200,
                               help_text="One-choice labels: the option written as 1 (the others as 0).")
    test_set = forms.ModelChoiceField(queryset=None, required=False, empty_label="A new test set from the split's test cases",
                                      help_text="An existing test set gets a new truth version and is re-scored.")
    name = forms.CharField(required=False, max_length=100, help_text="The new test set's name.")
    note = forms.CharField(required=False, max_length=500, help_text="What this version is, for the record.")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = project.labels.exclude(kind__in=[LabelKind.TEXT, LabelKind.POINTS])
        self.fields["test_set"].queryset = project.challenge.test_sets.order_by("name")
        self.fields["test_set"].label_from_instance = lambda test_set: test_set.name


class ProposalForm(forms.Form):
    label = forms.ModelChoiceField(queryset=Label.objects.none())
    name = forms.CharField(max_length=200, help_text="Which model proposed these, e.g. the baseline and its version.")
    min_confidence = forms.FloatField(min_value=0, max_value=1, initial=0.5, required=False,
                                      help_text="Boxes: only those at or above this confidence are proposed.")
    file = forms.FileField(help_text="Boxes: the detection CSV patientId,PredictionString. Masks: a .zip of <case_id>.png.")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = project.labels.filter(kind__in=[LabelKind.BOXES, LabelKind.MASKS])

    def clean_min_confidence(self):
        value = self.cleaned_data.get("min_confidence")
        return 0.5 if value is None else value
